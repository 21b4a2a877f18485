//! How long one mail takes through `SmtpMailer` to a local relay (the test sink, aiosmtpd), per
//! TLS mode: N sequential sends on the pooled connection, per-message p50 / p99 / max.
//!
//! `cargo run --release -p rekey-notify --example mail_latency -- [N]` (default 200). Needs
//! `python3-aiosmtpd` (`dev/mail install`). A measurement, not a test: nothing is asserted.
#![allow(clippy::unwrap_used, clippy::print_stdout, reason = "a benchmark")]

use std::time::{Duration, Instant};

use rekey_core::notify::{Email, Mailer};
use rekey_notify::SmtpMailer;
use rekey_notify::testing::SmtpSink;

#[tokio::main]
async fn main() {
    let n: usize = std::env::args().nth(1).map_or(200, |a| a.parse().unwrap());
    println!("{n} sequential mails per mode, one pooled connection (first send not counted)");
    for (mode, sink) in [
        ("plain", SmtpSink::start()),
        ("starttls", SmtpSink::start_starttls()),
        ("tls", SmtpSink::start_smtps()),
    ] {
        let mailer = SmtpMailer::new(&sink.mailer_config()).unwrap();
        let mail = Email {
            to: "bench@corp.example.com".into(),
            subject: "Your code".into(),
            body: "Your Rekey code: 493817\nIt expires in 10 minutes.\n".into(),
        };
        let started = Instant::now();
        mailer.send(&mail).await.unwrap();
        let first = started.elapsed();
        let mut took: Vec<Duration> = Vec::with_capacity(n);
        for _ in 0..n {
            let started = Instant::now();
            mailer.send(&mail).await.unwrap();
            took.push(started.elapsed());
        }
        took.sort();
        let at = |q: f64| took[((took.len() - 1) as f64 * q).round() as usize];
        println!(
            "{mode:>8}: first {:>7.2} ms | p50 {:>6.2} ms  p99 {:>6.2} ms  max {:>6.2} ms",
            ms(first),
            ms(at(0.50)),
            ms(at(0.99)),
            ms(at(1.0)),
        );
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
