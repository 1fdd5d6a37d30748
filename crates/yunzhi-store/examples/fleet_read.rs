//! Times the efficiency analysis' read of a whole fleet's daily figures
//! (`Store::each_fleet_daily_stats_changed`) on an existing database, with
//! the server's allocator: `cargo run --release -p yunzhi-store --example
//! fleet_read -- sqlite://PATH FIRST_DAY LAST_DAY [runs]`.

use std::time::Instant;

use yunzhi_store::Store;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, from, to, rest @ ..] = args.as_slice() else {
        anyhow::bail!("usage: fleet_read DATABASE_URL FIRST_DAY LAST_DAY [runs]");
    };
    let runs: usize = rest.first().map(|r| r.parse()).transpose()?.unwrap_or(3);
    let store = Store::open(url).await?;
    for _ in 0..runs {
        let t = Instant::now();
        let (mut rows, mut samples) = (0usize, 0u64);
        store
            .each_fleet_daily_stats_changed(i64::MIN, from.parse()?, to.parse()?, |_, d| {
                rows += 1;
                samples += u64::from(d.samples);
            })
            .await?;
        let secs = t.elapsed().as_secs_f64();
        println!(
            "{rows} host-days ({samples} samples) in {secs:.3} s: {:.2} µs a row",
            secs * 1e6 / rows as f64
        );
    }
    store.close().await;
    Ok(())
}
