//! `rekey-bench [--quick] [--users N] [--seconds S] [--pool N] [--out DIR] [--only SCENARIO,…]
//! [--concurrency C,…] [--rounds N]
//! [--in-process]`
//! `rekey-bench --spans N`: time the components of Rekey's write steps one by one, N calls each.
//!
//! Needs the dev domain (`dev/domain up`). Writes `DIR/latest.json` and `DIR/latest.md`
//! (default `target/bench`) and prints the table. Exit code 1 on any failure, including a
//! final password that does not bind.

use std::path::PathBuf;
use std::process::ExitCode;

use rekey_bench::{Options, report};

fn usage() -> ExitCode {
    eprintln!(
        "usage: rekey-bench [--quick] [--users N] [--seconds S] [--pool N] [--out DIR] [--only SCENARIO,…] [--concurrency C,…] [--rounds N] [--in-process] | --spans N

Rekey runs as `rekey serve` in its own process (the `rekey` binary beside this one, or
$REKEY_BENCH_BIN; build it with `cargo build --release -p rekey`): the \"Rekey CPU ms/op\"
column is that process's CPU (all threads, /proc/<pid>/stat) per operation, the \"bench CPU\"
column this process's (HTTP client, SMTP sink). --in-process: the portal in this process
instead (no Rekey CPU column; bench CPU then includes Rekey)."
    );
    ExitCode::from(2)
}

fn parse() -> Option<(Options, Option<usize>)> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut opts = if args.iter().any(|a| a == "--quick") {
        Options::quick()
    } else {
        Options::full()
    };
    // Rekey in its own process unless --in-process (also with --quick).
    opts.rekey_process = true;
    let mut spans = None;
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => {}
            "--in-process" => opts.rekey_process = false,
            "--rekey-process" => opts.rekey_process = true,
            "--users" => opts.users = it.next()?.parse().ok()?,
            "--seconds" => opts.seconds = it.next()?.parse().ok()?,
            "--rounds" => opts.rounds = it.next()?.parse().ok()?,
            "--pool" => opts.pool_size = it.next()?.parse().ok()?,
            "--out" => opts.out = PathBuf::from(it.next()?),
            "--only" => opts.only = it.next()?.split(',').map(str::to_owned).collect(),
            "--concurrency" => {
                opts.concurrency = it
                    .next()?
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()
                    .ok()?;
            }
            "--spans" => spans = Some(it.next()?.parse().ok()?),
            _ => return None,
        }
    }
    (opts.seconds > 0.0 && opts.pool_size > 0).then_some((opts, spans))
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> ExitCode {
    let Some((opts, spans)) = parse() else {
        return usage();
    };
    if let Some(n) = spans {
        return match rekey_bench::spans::run(n.max(1)).await {
            Ok(s) => {
                println!("{}", rekey_bench::spans::markdown(&s));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("rekey-bench: FAILED: {e}");
                ExitCode::FAILURE
            }
        };
    }
    match rekey_bench::run(&opts).await {
        Ok(r) => {
            let table = report::markdown(&r);
            println!("{table}");
            match report::write(&r, &opts.out) {
                Ok((json, md)) => {
                    println!("wrote {} and {}", json.display(), md.display());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("rekey-bench: writing {}: {e}", opts.out.display());
                    ExitCode::FAILURE
                }
            }
        }
        Err(e) => {
            eprintln!("rekey-bench: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}
