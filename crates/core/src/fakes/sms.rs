//! An SMS gateway in memory: records what it was given, or fails the way a gateway does.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::landing::BoxFuture;
use crate::notify::{Sms, SmsError, SmsSender};

/// How the fake gateway fails while set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsFailure {
    /// Unreachable or 5xx: worth retrying.
    Unavailable,
    /// 429: worth retrying later.
    Throttled,
    /// 4xx: refused for good.
    Refused,
}

/// Records every message it accepted; `fail` makes it refuse instead.
#[derive(Default)]
pub struct FakeSms {
    pub sent: Mutex<Vec<Sms>>,
    pub fail: Mutex<Option<SmsFailure>>,
    /// Every call, failed or not.
    pub attempts: AtomicUsize,
}

impl FakeSms {
    /// Fail every message from now on (`None`: deliver again).
    pub fn failing(&self, how: Option<SmsFailure>) {
        *self.fail.lock().unwrap() = how;
    }

    /// How many messages were delivered.
    pub fn count(&self) -> usize {
        self.sent.lock().unwrap().len()
    }

    /// The newest message delivered.
    pub fn last(&self) -> Sms {
        self.sent.lock().unwrap().last().expect("an SMS").clone()
    }

    /// The 6-digit code in the newest message.
    pub fn last_code(&self) -> String {
        six_digits(&self.last().body).expect("a code in the SMS")
    }
}

/// The first run of exactly six ASCII digits in `text`.
pub fn six_digits(text: &str) -> Option<String> {
    text.split(|c: char| !c.is_ascii_digit())
        .find(|run| run.len() == 6)
        .map(str::to_owned)
}

impl SmsSender for FakeSms {
    fn send<'a>(&'a self, sms: &'a Sms) -> BoxFuture<'a, Result<(), SmsError>> {
        self.attempts.fetch_add(1, Ordering::Relaxed);
        let outcome = match *self.fail.lock().unwrap() {
            Some(SmsFailure::Unavailable) => Err(SmsError::Unavailable("gateway down".into())),
            Some(SmsFailure::Throttled) => Err(SmsError::Throttled("slow down".into())),
            Some(SmsFailure::Refused) => Err(SmsError::Refused("number refused".into())),
            None => {
                self.sent.lock().unwrap().push(sms.clone());
                Ok(())
            }
        };
        Box::pin(std::future::ready(outcome))
    }
}
