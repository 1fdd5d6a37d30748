// Yunzhi console: draws the evidence charts with Apache ECharts, loading
// it (from this server) only on pages that have a chart. Each chart's data
// comes from the page as JSON, already labelled in the reader's language.
(function () {
  'use strict';

  var loading = null;

  function loadECharts() {
    if (window.echarts) return Promise.resolve(window.echarts);
    if (!loading) {
      loading = new Promise(function (resolve, reject) {
        var s = document.createElement('script');
        s.src = document.body.getAttribute('data-echarts');
        s.onload = function () { resolve(window.echarts); };
        s.onerror = function () { reject(new Error('ECharts did not load')); };
        document.head.appendChild(s);
      });
    }
    return loading;
  }

  function option(spec) {
    var days = spec.days;
    var bar = spec.kind === 'bar';
    var series = spec.series.map(function (s) {
      return {
        name: s.name,
        type: bar ? 'bar' : 'line',
        yAxisIndex: s.axis === 'mb' ? 1 : 0,
        data: s.data,
        showSymbol: days.length <= 31,
        connectNulls: false
      };
    });
    spec.limits.forEach(function (l) {
      if (bar) {
        // On bars a limit is a line across the whole chart.
        (series[0] = series[0] || { type: 'bar', data: [] }).markLine = {
          silent: true, symbol: 'none', lineStyle: { type: 'dashed' },
          label: { formatter: l.name }, data: [{ yAxis: l.value }]
        };
        return;
      }
      series.push({
        name: l.name,
        type: 'line',
        yAxisIndex: l.axis === 'mb' ? 1 : 0,
        data: days.map(function () { return l.value; }),
        showSymbol: false,
        lineStyle: { type: 'dashed', width: 1 },
        tooltip: { show: false }
      });
    });
    if (spec.skipped.length && series.length) {
      series[0].markArea = {
        silent: true,
        itemStyle: { color: 'rgba(120, 120, 120, 0.12)' },
        data: spec.skipped.map(function (d) { return [{ xAxis: d }, { xAxis: d }]; })
      };
    }
    return {
      aria: { enabled: true },
      // Evidence, not a show: drawn at once, and screenshots see all of it.
      animation: false,
      title: { text: spec.title, left: 'center', textStyle: { fontSize: 14 } },
      tooltip: { trigger: 'axis' },
      legend: { bottom: 0, type: 'scroll' },
      grid: { left: 56, right: 64, top: 48, bottom: 64 },
      xAxis: { type: 'category', data: days },
      yAxis: [
        // Shares of a whole read against the whole: a bar chart goes to 100 %.
        { type: 'value', name: spec.percent_axis, min: 0, max: bar ? function (v) { return Math.max(v.max, 100); } : null },
        { type: 'value', name: spec.mb_axis, min: 0, splitLine: { show: false } }
      ],
      series: series
    };
  }

  function draw(root) {
    var holders = root.querySelectorAll ? root.querySelectorAll('[data-chart]') : [];
    if (!holders.length) return;
    loadECharts().then(function (echarts) {
      holders.forEach(function (el) {
        if (el.getAttribute('data-drawn')) return;
        var data = el.querySelector('script[type="application/json"]');
        if (!data) return;
        var canvas = document.createElement('div');
        canvas.className = 'chart-canvas';
        el.appendChild(canvas);
        var chart = echarts.init(canvas, null, { renderer: 'svg' });
        chart.setOption(option(JSON.parse(data.textContent)));
        window.addEventListener('resize', function () { chart.resize(); });
        el.setAttribute('data-drawn', '1');
      });
    });
  }

  document.addEventListener('htmx:load', function (e) { draw(e.detail.elt); });
  document.addEventListener('DOMContentLoaded', function () { draw(document.body); });
})();

// Quota bars: the width comes from data-pct (the page's CSP allows no
// inline styles); the bar's full width stands for 150 %.
(function () {
  'use strict';
  function bars(root) {
    if (!root.querySelectorAll) return;
    root.querySelectorAll('[data-pct]').forEach(function (el) {
      var pct = Math.min(150, Number(el.getAttribute('data-pct')) || 0);
      el.style.width = (pct / 1.5) + '%';
    });
  }
  document.addEventListener('htmx:load', function (e) { bars(e.detail.elt); });
  document.addEventListener('DOMContentLoaded', function () { bars(document.body); });
})();
