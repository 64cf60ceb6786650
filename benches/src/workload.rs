//! Workloads, their sides, how `compare` measures them and how it reports them.
//!
//! A [`Workload`] is a name, what one op is, how many ops one run performs, and its sides:
//! spindle first, then each peer. A side is a function that performs one complete run (setup
//! and teardown outside the clock) and returns the [`Sample`] of its timed part. Adding a row
//! is adding a `Workload` to one of the lists in [`crate::rows`].
//!
//! **Measuring.** [`measure_interleaved`] runs every side once as a warm-up, then `rounds`
//! rounds in which each side runs once, in turn: slow drift of a shared machine then lands on
//! every side alike. The order turns by one side each round (round `r` starts with side `r mod
//! n`), so no side always runs first or always right after a given other: on this project's
//! VM the run right after another side's (its freed heap, its threads' last cache and page
//! state) measured up to ~1.5x apart from the same side run first (`spawn_1m_then_run`, with
//! spindle always first: spindle 89-195 ns per task over 5 repeats). A side's figure for that
//! measurement is the median over its rounds, for wall and CPU time separately. `compare --repeat N` repeats the whole set of
//! measurements N times (every workload once per repeat, so drift spreads over the workloads
//! too); [`Report`] then gives each figure as the median of the N medians with their range, and
//! each ratio spindle/peer as the median of the N per-repeat ratios with their range.

use std::fmt::Write as _;
use std::panic::{self, AssertUnwindSafe};
use std::time::Instant;

use crate::clock::Sample;
use crate::median_ns;

/// One complete run of one side of a workload; returns its timed part.
pub type RunFn = Box<dyn Fn() -> Sample>;

/// One side of a workload: spindle, or a peer.
pub struct Side {
    /// `spindle`, or the peer's name, e.g. `tokio_current_thread`.
    pub name: &'static str,
    /// One complete run.
    pub run: RunFn,
}

/// A workload and its sides (spindle first).
pub struct Workload {
    /// Row name, e.g. `call_soon`; a name ending in [`ONE_WORKER`] is the one-worker twin of
    /// the row without it.
    pub name: String,
    /// What one op is, for the progress lines.
    pub unit: &'static str,
    /// Ops one run performs.
    pub ops: u64,
    /// Spindle first, then the peers.
    pub sides: Vec<Side>,
}

/// Suffix of the one-worker twin of an `rt_*` row (the row without it runs 2 workers).
pub const ONE_WORKER: &str = "/w1";

impl Workload {
    /// A workload with spindle's side only; add peers with [`peer`](Self::peer).
    ///
    /// ```
    /// use spindle_benches::clock::Clock;
    /// use spindle_benches::workload::Workload;
    /// let w = Workload::new("noop", "op", 1, || Clock::start().stop())
    ///     .peer("also_noop", || Clock::start().stop());
    /// assert_eq!(w.sides.len(), 2);
    /// ```
    pub fn new(
        name: impl Into<String>,
        unit: &'static str,
        ops: u64,
        spindle: impl Fn() -> Sample + 'static,
    ) -> Workload {
        Workload {
            name: name.into(),
            unit,
            ops,
            sides: vec![Side {
                name: "spindle",
                run: Box::new(spindle),
            }],
        }
    }

    /// Adds a peer side.
    pub fn peer(mut self, name: &'static str, run: impl Fn() -> Sample + 'static) -> Workload {
        self.sides.push(Side {
            name,
            run: Box::new(run),
        });
        self
    }
}

/// A side's figures from one measurement (medians over its rounds), ns per op; `NaN` if the
/// side panicked (and `p99_ns` also when the side does not time its operations).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Figures {
    /// Wall time per op.
    pub wall_ns: f64,
    /// CPU time (user + sys of the process) per op.
    pub cpu_ns: f64,
    /// p99 latency of one op (not divided by anything: it is already per op).
    pub p99_ns: f64,
}

impl Figures {
    const FAILED: Figures = Figures {
        wall_ns: f64::NAN,
        cpu_ns: f64::NAN,
        p99_ns: f64::NAN,
    };

    fn get(&self, metric: Metric) -> f64 {
        match metric {
            Metric::Wall => self.wall_ns,
            Metric::Cpu => self.cpu_ns,
            Metric::P99 => self.p99_ns,
        }
    }
}

/// Which time a figure or a target is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// Wall time.
    Wall,
    /// CPU time of the process.
    Cpu,
    /// p99 latency of one op (rows whose sides report [`Sample::p99`]).
    P99,
}

/// Called around each run of a side with `Some("workload / side")` before and `None` after
/// (the watchdog of `compare`).
pub type OnSide<'a> = &'a dyn Fn(Option<String>);

/// Measures every side of `workload`, interleaved (see the module docs): one warm-up each,
/// then `rounds` rounds. Returns each side's figures in side order.
pub fn measure_interleaved(
    workload: &Workload,
    rounds: usize,
    on_side: OnSide<'_>,
) -> Vec<Figures> {
    let sides = &workload.sides;
    let ops = workload.ops.max(1) as f64;
    let mut wall: Vec<Vec<f64>> = vec![Vec::with_capacity(rounds); sides.len()];
    let mut cpu = wall.clone();
    let mut p99 = wall.clone();
    let mut failed = vec![false; sides.len()];
    let started = Instant::now();
    for round in 0..=rounds {
        for turn in 0..sides.len() {
            let index = (round + turn) % sides.len();
            let side = &sides[index];
            if failed[index] {
                continue;
            }
            on_side(Some(format!("{} / {}", workload.name, side.name)));
            match panic::catch_unwind(AssertUnwindSafe(&side.run)) {
                // Round 0 is the warm-up.
                Ok(s) if round > 0 => {
                    wall[index].push(s.wall.as_nanos() as f64 / ops);
                    cpu[index].push(s.cpu.as_nanos() as f64 / ops);
                    if let Some(p) = s.p99 {
                        p99[index].push(p.as_nanos() as f64);
                    }
                }
                Ok(_) => {}
                Err(_) => failed[index] = true,
            }
            on_side(None);
        }
    }
    let figures: Vec<Figures> = (0..sides.len())
        .map(|i| {
            if failed[i] {
                Figures::FAILED
            } else {
                Figures {
                    wall_ns: median_ns(std::mem::take(&mut wall[i])),
                    cpu_ns: median_ns(std::mem::take(&mut cpu[i])),
                    p99_ns: if p99[i].is_empty() {
                        f64::NAN
                    } else {
                        median_ns(std::mem::take(&mut p99[i]))
                    },
                }
            }
        })
        .collect();
    for (side, f) in sides.iter().zip(&figures) {
        if f.wall_ns.is_nan() {
            eprintln!(
                "  {:<28} {:<26} FAILED (panicked)",
                workload.name, side.name
            );
        } else if f.p99_ns.is_nan() {
            eprintln!(
                "  {:<28} {:<26} wall {:>9.2}  cpu {:>9.2} ns per {}",
                workload.name, side.name, f.wall_ns, f.cpu_ns, workload.unit
            );
        } else {
            eprintln!(
                "  {:<28} {:<26} wall {:>9.2}  cpu {:>9.2} ns per {}, p99 {:.1} us",
                workload.name,
                side.name,
                f.wall_ns,
                f.cpu_ns,
                workload.unit,
                f.p99_ns / 1e3
            );
        }
    }
    eprintln!(
        "  ({rounds} rounds interleaved in {:.1} s)",
        started.elapsed().as_secs_f64()
    );
    figures
}

/// Median and range of a set of values (`NaN`s, failed sides, are left out).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    /// The median.
    pub median: f64,
    /// The smallest value.
    pub min: f64,
    /// The largest value.
    pub max: f64,
}

impl Spread {
    /// The spread of `values`; all `NaN` when none is a number.
    ///
    /// ```
    /// use spindle_benches::workload::Spread;
    /// let s = Spread::of([3.0, 1.0, f64::NAN, 2.0]);
    /// assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
    /// ```
    pub fn of(values: impl IntoIterator<Item = f64>) -> Spread {
        let xs: Vec<f64> = values.into_iter().filter(|x| !x.is_nan()).collect();
        let min = xs
            .iter()
            .copied()
            .min_by(f64::total_cmp)
            .unwrap_or(f64::NAN);
        let max = xs
            .iter()
            .copied()
            .max_by(f64::total_cmp)
            .unwrap_or(f64::NAN);
        Spread {
            median: median_ns(xs),
            min,
            max,
        }
    }

    /// `median (min-max)`, or `none` when there is no number; one value shows without a
    /// range.
    fn show(&self, fmt: fn(f64) -> String, repeats: usize, none: &str) -> String {
        if self.median.is_nan() {
            none.to_owned()
        } else if repeats < 2 {
            fmt(self.median)
        } else {
            format!("{} ({}-{})", fmt(self.median), fmt(self.min), fmt(self.max))
        }
    }
}

/// The figures of every repeat: `figures[repeat][workload][side]`, workloads in the order of
/// `names`, sides as in each workload.
pub struct Report {
    /// Workload names and their sides' names, in measuring order.
    pub names: Vec<(String, Vec<&'static str>)>,
    /// One entry per repeat.
    pub figures: Vec<Vec<Vec<Figures>>>,
}

impl Report {
    /// An empty report on `workloads`.
    pub fn new(workloads: &[Workload]) -> Report {
        Report {
            names: workloads
                .iter()
                .map(|w| (w.name.clone(), w.sides.iter().map(|s| s.name).collect()))
                .collect(),
            figures: Vec::new(),
        }
    }

    fn index(&self, workload: &str, side: &str) -> Option<(usize, usize)> {
        let w = self.names.iter().position(|(n, _)| *n == workload)?;
        let s = self.names[w].1.iter().position(|n| *n == side)?;
        Some((w, s))
    }

    /// Whether a side failed (panicked) in any repeat.
    ///
    /// ```
    /// use spindle_benches::workload::{measure_interleaved, Report, Workload};
    /// let rows = [Workload::new("w", "op", 1, || panic!("broken"))];
    /// let mut report = Report::new(&rows);
    /// report.figures.push(vec![measure_interleaved(&rows[0], 1, &|_| {})]);
    /// assert!(report.any_failed());
    /// ```
    pub fn any_failed(&self) -> bool {
        self.figures
            .iter()
            .flatten()
            .flatten()
            .any(|f| f.wall_ns.is_nan())
    }

    /// The spread over repeats of one side's figure.
    pub fn figure(&self, workload: &str, side: &str, metric: Metric) -> Option<Spread> {
        let (w, s) = self.index(workload, side)?;
        Some(Spread::of(self.figures.iter().map(|r| r[w][s].get(metric))))
    }

    /// The spread over repeats of `a / b`, each a (workload, side), ratio taken per repeat.
    pub fn ratio(&self, a: (&str, &str), b: (&str, &str), metric: Metric) -> Option<Spread> {
        let (aw, a_s) = self.index(a.0, a.1)?;
        let (bw, b_s) = self.index(b.0, b.1)?;
        Some(Spread::of(self.figures.iter().map(|r| {
            let (x, y) = (r[aw][a_s].get(metric), r[bw][b_s].get(metric));
            if y > 0.0 {
                x / y
            } else {
                f64::NAN
            }
        })))
    }

    /// The table: per workload a spindle line, then one line per peer with the ratios
    /// spindle/peer (wall and CPU; below 1.0 spindle is faster).
    pub fn table(&self) -> String {
        let repeats = self.figures.len();
        let header = [
            "workload",
            "side",
            "wall ns/op",
            "cpu ns/op",
            "spindle/peer wall",
            "spindle/peer cpu",
        ];
        let mut cells: Vec<[String; 6]> = Vec::new();
        for (workload, sides) in &self.names {
            for (i, side) in sides.iter().enumerate() {
                let fig = |m| {
                    self.figure(workload, side, m)
                        .map_or(String::new(), |s| s.show(fmt_ns, repeats, "FAILED"))
                };
                let ratio = |m| {
                    if i == 0 {
                        return String::new();
                    }
                    self.ratio((workload, "spindle"), (workload, side), m)
                        .map_or(String::new(), |s| s.show(fmt_ratio, repeats, "n/a"))
                };
                cells.push([
                    if i == 0 {
                        workload.to_string()
                    } else {
                        String::new()
                    },
                    side.to_string(),
                    fig(Metric::Wall),
                    fig(Metric::Cpu),
                    ratio(Metric::Wall),
                    ratio(Metric::Cpu),
                ]);
            }
        }
        render(&header, &cells)
    }

    /// For every `rt_*` row with a one-worker twin: per side, time with 2 workers over time
    /// with 1 (wall and CPU), median and range over the repeats.
    pub fn workers_table(&self) -> String {
        let repeats = self.figures.len();
        let header = [
            "workload",
            "side",
            "wall w1 ns/op",
            "wall w2 ns/op",
            "w2/w1 wall",
            "w2/w1 cpu",
        ];
        let mut cells: Vec<[String; 6]> = Vec::new();
        for (name, sides) in &self.names {
            let Some(two) = name.strip_suffix(ONE_WORKER) else {
                continue;
            };
            for side in sides {
                let Some(w2) = self.figure(two, side, Metric::Wall) else {
                    continue;
                };
                let w1 = self.figure(name, side, Metric::Wall);
                let r = |m| {
                    self.ratio((two, side), (name, side), m)
                        .map_or(String::new(), |s| s.show(fmt_ratio, repeats, "n/a"))
                };
                cells.push([
                    two.to_owned(),
                    side.to_string(),
                    w1.map_or(String::new(), |s| s.show(fmt_ns, repeats, "FAILED")),
                    w2.show(fmt_ns, repeats, "FAILED"),
                    r(Metric::Wall),
                    r(Metric::Cpu),
                ]);
            }
        }
        render(&header, &cells)
    }

    /// For every row whose sides time each op: per side the p99 latency of one op (in
    /// microseconds) and the ratio spindle/peer, median and range over the repeats. Empty
    /// (the header only) when no row does.
    pub fn latency_table(&self) -> String {
        let repeats = self.figures.len();
        let header = ["workload", "side", "p99 us", "spindle/peer p99"];
        let mut cells: Vec<[String; 4]> = Vec::new();
        for (workload, sides) in &self.names {
            let timed = sides.iter().any(|side| {
                self.figure(workload, side, Metric::P99)
                    .is_some_and(|s| !s.median.is_nan())
            });
            if !timed {
                continue;
            }
            for (i, side) in sides.iter().enumerate() {
                let p99 = self
                    .figure(workload, side, Metric::P99)
                    .map_or(String::new(), |s| s.show(fmt_us, repeats, "n/a"));
                let ratio = if i == 0 {
                    String::new()
                } else {
                    self.ratio((workload, "spindle"), (workload, side), Metric::P99)
                        .map_or(String::new(), |s| s.show(fmt_ratio, repeats, "n/a"))
                };
                let name = if i == 0 {
                    workload.clone()
                } else {
                    String::new()
                };
                cells.push([name, side.to_string(), p99, ratio]);
            }
        }
        render(&header, &cells)
    }
}

fn fmt_us(ns: f64) -> String {
    format!("{:.1}", ns / 1e3)
}

fn fmt_ns(ns: f64) -> String {
    if ns.abs() >= 100.0 {
        format!("{ns:.0}")
    } else if ns.abs() >= 10.0 {
        format!("{ns:.1}")
    } else {
        format!("{ns:.2}")
    }
}

fn fmt_ratio(r: f64) -> String {
    format!("{r:.2}")
}

/// An aligned text table: the first two columns align left, the others right.
fn render<const N: usize>(header: &[&str; N], cells: &[[String; N]]) -> String {
    let mut width = header.map(str::len);
    for row in cells {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cols: [&str; N]| {
        let mut s = String::new();
        for (i, (cell, w)) in cols.iter().zip(width).enumerate() {
            if i > 0 {
                s.push_str("  ");
            }
            if i < 2 {
                let _ = write!(s, "{cell:<w$}");
            } else {
                let _ = write!(s, "{cell:>w$}");
            }
        }
        s.truncate(s.trim_end().len());
        s.push('\n');
        s
    };
    let mut out = line(*header);
    let total: usize = width.iter().sum::<usize>() + 2 * (N - 1);
    out.push_str(&"-".repeat(total));
    out.push('\n');
    for row in cells {
        out.push_str(&line(std::array::from_fn(|i| row[i].as_str())));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report_of(rows: &[(&'static str, &[(&'static str, f64)])], repeats: usize) -> Report {
        let names = rows
            .iter()
            .map(|(w, sides)| (w.to_string(), sides.iter().map(|(s, _)| *s).collect()))
            .collect();
        let one: Vec<Vec<Figures>> = rows
            .iter()
            .map(|(_, sides)| {
                sides
                    .iter()
                    .map(|&(_, ns)| Figures {
                        wall_ns: ns,
                        cpu_ns: 2.0 * ns,
                        p99_ns: if ns > 25.0 { 10.0 * ns } else { f64::NAN },
                    })
                    .collect()
            })
            .collect();
        Report {
            names,
            figures: vec![one; repeats],
        }
    }

    #[test]
    fn table_gives_ratios_on_peer_lines_with_ranges() {
        let r = report_of(&[("w", &[("spindle", 30.0), ("p", 20.0)])], 3);
        let t = r.table();
        let last = t.lines().last().unwrap();
        assert!(last.ends_with("1.50 (1.50-1.50)  1.50 (1.50-1.50)"), "{t}");
    }

    #[test]
    fn latency_table_lists_only_rows_that_time_their_ops() {
        let r = report_of(
            &[
                ("timed", &[("spindle", 30.0), ("p", 40.0)]),
                ("untimed", &[("spindle", 20.0), ("p", 20.0)]),
            ],
            1,
        );
        let t = r.latency_table();
        assert!(!t.contains("untimed"), "{t}");
        let last: Vec<&str> = t.lines().last().unwrap().split_whitespace().collect();
        assert_eq!(last, ["p", "0.4", "0.75"], "{t}");
    }

    #[test]
    fn workers_table_divides_two_workers_by_one() {
        let r = report_of(
            &[
                ("rt_x", &[("spindle", 33.0)]),
                ("rt_x/w1", &[("spindle", 30.0)]),
            ],
            1,
        );
        let t = r.workers_table();
        let last: Vec<&str> = t.lines().last().unwrap().split_whitespace().collect();
        assert_eq!(last[last.len() - 2..], ["1.10", "1.10"], "{t}");
    }
}
