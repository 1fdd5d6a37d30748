-- The statutory working-day calendar, one row a year, editable at run time
-- by the system administrator (each year's schedule is announced late in
-- the year before). `schedule` is the year's JSON: source, holidays, workdays.

CREATE TABLE calendar_years (
    year BIGINT PRIMARY KEY,
    schedule TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
