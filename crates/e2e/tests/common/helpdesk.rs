//! What the console's end-to-end tests share (`tests/helpdesk.rs`, `tests/helpdesk_methods.rs`,
//! each including this file with `#[path]`): the wait, codes out of mails, the users' recovery
//! addresses, and signing in with a password and a mailed code.

#![allow(dead_code)]

use std::time::Duration;

use rekey_core::account::Guid;
use rekey_core::store::{Enrollment, MethodKind, Store};
use rekey_e2e::Browser;
use rekey_e2e::dev::{Dev, User};
use rekey_notify::testing::SmtpSink;

pub const WAIT: Duration = Duration::from_secs(15);

/// The 6-digit code in a mail's body.
pub fn code_in(body: &str) -> String {
    body.split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .unwrap_or_else(|| panic!("no code in {body:?}"))
        .to_owned()
}

/// `u`'s recovery address.
pub fn home(u: &User) -> String {
    format!("{}@home.example", u.sam)
}

/// The wall clock in Unix seconds.
pub fn now() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

/// Give `u` a confirmed recovery address, three days old (as enrollment would have).
pub async fn enroll(d: &Dev, store: &dyn Store, u: &User) {
    let guid = Guid(d.object_guid(&u.dn).await);
    store
        .upsert_enrollment(&Enrollment::contact(
            guid,
            MethodKind::Email,
            &home(u),
            now() - 3 * 86_400,
        ))
        .await
        .unwrap();
}

/// Fill `fields` (css selector, value), submit, and wait for `next`.
pub async fn submit(b: &Browser, fields: &[(&str, &str)], next: &str) {
    for (css, value) in fields {
        b.fill(css, value).await.unwrap();
    }
    b.submit("button[type=submit]").await.unwrap();
    b.wait_for(next, WAIT).await.unwrap();
}

/// Sign in as `u` at `page` (the console, or enrollment): the password, the method offered
/// first (a screenshot `{shot}-factor` of the choice, if named), then the code mailed to their
/// address; waits for `next`.
pub async fn sign_in_at(
    b: &Browser,
    page: &str,
    sink: &SmtpSink,
    u: &User,
    shot: Option<&str>,
    next: &str,
) {
    b.goto(page).await.unwrap();
    b.wait_for("#password", WAIT).await.unwrap();
    submit(
        b,
        &[("#username", &u.sam), ("#password", &u.password)],
        "input[name=method]",
    )
    .await;
    if let Some(shot) = shot {
        b.screenshot(&format!("{shot}-factor")).await.unwrap();
    }
    b.submit("button[type=submit]").await.unwrap();
    b.wait_for("#code", WAIT).await.unwrap();
    let code = code_in(&sink.wait_for(&home(u), WAIT).await.body);
    submit(b, &[("#code", &code)], next).await;
}
