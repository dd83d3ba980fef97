//! SQS notification bodies (CloudTrail's and S3's, raw or through SNS).

use trailmill_core::notification::{self, Notification};

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let body = String::from_utf8_lossy(data);
        match notification::parse("m-1", &body) {
            Ok(Notification::Objects { objects, .. }) => {
                assert!(
                    objects
                        .iter()
                        .all(|o| !o.bucket.is_empty() && !o.key.is_empty())
                );
            }
            Ok(_) => {}
            Err(e) => assert!(e.to_string().starts_with("message m-1: ")),
        }
    });
}
