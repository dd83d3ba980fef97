//! Realistic CloudTrail records.
//!
//! Each account gets a fixed cast ([`Account`]): IAM users, roles, buckets,
//! functions, KMS keys, instances and source addresses, drawn once from the
//! seed. Records pick from that cast and add fresh random IDs (event and
//! request IDs, object keys, access keys, tokens), which keeps the gzip ratio
//! near that of real logs (about 7:1).

use rand::{Rng, RngCore};
use rand_chacha::ChaCha8Rng;

use crate::json::{Arr, Obj};
use crate::time::{iso, iso_into, sts_expiration};

/// The RNG every generated file draws from.
pub(crate) type FileRng = ChaCha8Rng;

const BASE32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const HEX: &[u8] = b"0123456789abcdef";
const UPPER_HEX: &[u8] = b"0123456789ABCDEF";
const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const DIGITS: &[u8] = b"0123456789";

/// Appends `n` characters drawn from `alphabet` (at most 256 symbols).
pub(crate) fn push_random(out: &mut String, rng: &mut FileRng, alphabet: &[u8], n: usize) {
    let mut left = n;
    while left > 0 {
        let word = rng.next_u64().to_le_bytes();
        for &byte in word.iter().take(left) {
            out.push(alphabet[(usize::from(byte) * alphabet.len()) >> 8] as char);
        }
        left = left.saturating_sub(8);
    }
}

/// `n` characters drawn from `alphabet`.
pub(crate) fn random(rng: &mut FileRng, alphabet: &[u8], n: usize) -> String {
    let mut s = String::with_capacity(n);
    push_random(&mut s, rng, alphabet, n);
    s
}

/// The 16 alphanumerics that make a log file name unique.
pub(crate) fn unique_suffix(rng: &mut FileRng) -> String {
    random(rng, ALNUM, 16)
}

fn pick<'a, T>(rng: &mut FileRng, items: &'a [T]) -> &'a T {
    &items[rng.gen_range(0..items.len())]
}

fn pick_str<'a, S: AsRef<str>>(rng: &mut FileRng, items: &'a [S]) -> &'a str {
    pick(rng, items).as_ref()
}

/// The bijective SplitMix64 finalizer.
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn uuid_text(b: [u8; 16]) -> String {
    let mut s = String::with_capacity(36);
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push(HEX[usize::from(byte >> 4)] as char);
        s.push(HEX[usize::from(byte & 15)] as char);
    }
    s
}

/// A random version 4 UUID.
pub(crate) fn uuid(rng: &mut FileRng) -> String {
    let mut b = [0u8; 16];
    rng.fill_bytes(&mut b);
    b[6] = 0x40 | (b[6] & 0x0f);
    b[8] = 0x80 | (b[8] & 0x3f);
    uuid_text(b)
}

/// A version 4 UUID that is unique for each distinct `unique` value: all 64
/// bits of `unique` are stored in the UUID (bytes 0-5, the low nibble of byte
/// 6, byte 7 and the low nibble of byte 8); the rest is random.
pub(crate) fn unique_uuid(unique: u64, rng: &mut FileRng) -> String {
    let m = unique.to_be_bytes();
    let r = rng.next_u64().to_be_bytes();
    let b = [
        m[0],
        m[1],
        m[2],
        m[3],
        m[4],
        m[5],
        0x40 | (m[6] & 0x0f),
        m[7],
        0x80 | (r[0] & 0x30) | (m[6] >> 4),
        r[1],
        r[2],
        r[3],
        r[4],
        r[5],
        r[6],
        r[7],
    ];
    uuid_text(b)
}

/// An IAM user of an account.
struct User {
    name: String,
    principal_id: String,
    access_key: String,
}

/// An IAM role of an account, with the session names its callers use.
struct Role {
    name: String,
    role_id: String,
    sessions: Vec<String>,
}

/// The fixed cast of one account: who calls, and on what.
pub(crate) struct Account {
    /// The 12-digit account ID.
    pub(crate) id: String,
    users: Vec<User>,
    roles: Vec<Role>,
    buckets: Vec<String>,
    functions: Vec<String>,
    kms_keys: Vec<String>,
    instances: Vec<String>,
    security_groups: Vec<String>,
    ips: Vec<String>,
    vpc_endpoints: Vec<String>,
    secrets: Vec<String>,
    parameters: Vec<String>,
    partner: String,
}

const USER_NAMES: &[&str] = &[
    "alice",
    "bob.martin",
    "carol.jones",
    "dave",
    "erin.smith",
    "frank.li",
    "grace",
    "heidi.novak",
    "ci-deployer",
    "terraform",
    "backup-agent",
    "monitoring",
    "jenkins",
    "data-eng-svc",
];
const ROLE_NAMES: &[&str] = &[
    "OrganizationAccountAccessRole",
    "AWSReservedSSO_Admin_3f2a1b9c8d7e6f50",
    "ReadOnly",
    "eks-node-group-role",
    "lambda-exec-orders",
    "lambda-exec-ingest",
    "ecsTaskExecutionRole",
    "GitHubActionsDeploy",
    "DatadogIntegrationRole",
    "app-server",
    "glue-crawler-role",
    "SecurityAuditRole",
];
const BUCKET_WORDS: &[&str] = &[
    "data-lake",
    "app-logs",
    "backups",
    "artifacts",
    "static-assets",
    "athena-results",
    "terraform-state",
    "uploads",
];
const FUNCTIONS: &[&str] = &[
    "orders-api-prod",
    "ingest-worker",
    "thumbnailer",
    "auth-authorizer",
    "nightly-report",
    "slack-notifier",
    "stream-processor",
    "cost-explorer-export",
];
const ENVS: &[&str] = &["prod", "staging", "dev", "shared"];

impl Account {
    /// Draws the cast of account `id`.
    pub(crate) fn new(id: String, partner: String, rng: &mut FileRng) -> Self {
        let users = (0..6)
            .map(|_| User {
                name: (pick_str(rng, USER_NAMES)).to_owned(),
                principal_id: format!("AIDA{}", random(rng, BASE32, 17)),
                access_key: format!("AKIA{}", random(rng, BASE32, 16)),
            })
            .collect();
        let roles = (0..6)
            .map(|_| {
                let name = (pick_str(rng, ROLE_NAMES)).to_owned();
                let sessions = (0..3)
                    .map(|i| match (rng.gen_range(0..5), i) {
                        (0, _) => format!("i-0{}", random(rng, HEX, 16)),
                        (1, _) => format!("{}@example.com", pick_str(rng, USER_NAMES)),
                        (2, _) => "GitHubActions".to_owned(),
                        (3, _) => format!("aws-go-sdk-{}", random(rng, DIGITS, 19)),
                        _ => format!("botocore-session-{}", random(rng, DIGITS, 10)),
                    })
                    .collect();
                Role {
                    name,
                    role_id: format!("AROA{}", random(rng, BASE32, 17)),
                    sessions,
                }
            })
            .collect();
        let buckets = (0..5)
            .map(|_| {
                format!(
                    "acme-{}-{}-{}",
                    pick_str(rng, ENVS),
                    pick_str(rng, BUCKET_WORDS),
                    random(rng, HEX, 4)
                )
            })
            .collect();
        let functions = (0..5)
            .map(|_| format!("{}-{}", pick_str(rng, FUNCTIONS), random(rng, HEX, 4)))
            .collect();
        let kms_keys = (0..4).map(|_| uuid(rng)).collect();
        let instances = (0..12)
            .map(|_| format!("i-0{}", random(rng, HEX, 16)))
            .collect();
        let security_groups = (0..6)
            .map(|_| format!("sg-0{}", random(rng, HEX, 16)))
            .collect();
        let ips = (0..16)
            .map(|_| {
                format!(
                    "{}.{}.{}.{}",
                    rng.gen_range(3..224),
                    rng.gen_range(0..256),
                    rng.gen_range(0..256),
                    rng.gen_range(1..255)
                )
            })
            .collect();
        let vpc_endpoints = (0..2)
            .map(|_| format!("vpce-0{}", random(rng, HEX, 16)))
            .collect();
        let secrets = (0..4)
            .map(|_| {
                format!(
                    "{}/{}-{}",
                    pick_str(rng, ENVS),
                    pick_str(rng, &["db", "api-key", "oauth", "stripe"]),
                    random(rng, ALNUM, 6)
                )
            })
            .collect();
        let parameters = (0..6)
            .map(|_| {
                format!(
                    "/{}/{}/{}",
                    pick_str(rng, ENVS),
                    pick_str(rng, FUNCTIONS),
                    pick_str(
                        rng,
                        &[
                            "db-host",
                            "feature-flags",
                            "api-endpoint",
                            "log-level",
                            "queue-url"
                        ]
                    )
                )
            })
            .collect();
        Account {
            id,
            users,
            roles,
            buckets,
            functions,
            kms_keys,
            instances,
            security_groups,
            ips,
            vpc_endpoints,
            secrets,
            parameters,
            partner,
        }
    }
}

const USER_AGENTS: &[&str] = &[
    "aws-cli/2.15.30 Python/3.11.8 Linux/5.10.210-201.852.amzn2.x86_64 exe/x86_64.amzn.2",
    "AWS Internal",
    "aws-cli/2.13.25 Python/3.11.5 Darwin/23.1.0 exe/x86_64 prompt/off command/sts.get-caller-identity",
    "Boto3/1.34.55 Python/3.11.6 Linux/5.10.205-195.807.amzn2.x86_64 Botocore/1.34.55",
    "aws-sdk-go-v2/1.25.2 os/linux lang/go#1.21.7 md/GOOS#linux md/GOARCH#amd64 api/ec2#1.149.1",
    "aws-sdk-java/2.21.29 Linux/5.10.201-191.748.amzn2.x86_64 OpenJDK_64-Bit_Server_VM/17.0.9+8-LTS Java/17.0.9",
    "Terraform/1.7.4 terraform-provider-aws/5.40.0 aws-sdk-go/1.50.30 (go1.21.6; linux; amd64)",
    "console.amazonaws.com",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36",
    "aws-sdk-js/3.525.0 ua/2.0 os/linux#5.10.209-198.858.amzn2.x86_64 lang/js md/nodejs#20.11.1 api/s3#3.525.0",
    "datadog-agent/7.51.0",
];

const TLS: &[(&str, &str)] = &[
    ("TLSv1.3", "TLS_AES_128_GCM_SHA256"),
    ("TLSv1.3", "TLS_AES_256_GCM_SHA384"),
    ("TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256"),
];

/// Who made a call.
enum Who<'a> {
    User(&'a User),
    Role(&'a Role, &'a str),
    Service(&'static str),
}

/// What one file's records have in common.
pub(crate) struct FileCtx<'a> {
    /// The account the file belongs to.
    pub(crate) account: &'a Account,
    /// The region the events were recorded in.
    pub(crate) region: &'a str,
    /// The first second events may have.
    pub(crate) window_start: i64,
    /// How many seconds the window spans (at least 1).
    pub(crate) window_len: i64,
}

/// Buffers reused from record to record.
#[derive(Default)]
pub(crate) struct Scratch {
    req: Vec<u8>,
    resp: Vec<u8>,
    add: Vec<u8>,
    res: Vec<u8>,
}

/// The varying parts of one record, filled by an event kind.
struct Ev<'a> {
    version: &'static str,
    who: Who<'a>,
    source: &'static str,
    name: &'static str,
    error: Option<(&'static str, String)>,
    request_id: String,
    read_only: bool,
    data: bool,
    shared: bool,
    vpce: Option<&'a str>,
    host: Option<String>,
}

fn human<'a>(a: &'a Account, rng: &mut FileRng) -> Who<'a> {
    if rng.gen_bool(0.4) {
        let role = pick(rng, &a.roles);
        Who::Role(role, pick_str(rng, &role.sessions))
    } else {
        Who::User(pick(rng, &a.users))
    }
}

fn s3_additional(o: &mut Obj<'_>, rng: &mut FileRng, bytes_in: i64, bytes_out: i64) {
    o.s("SignatureVersion", "SigV4")
        .s("CipherSuite", "TLS_AES_128_GCM_SHA256")
        .n("bytesTransferredIn", bytes_in)
        .s("SSEApplied", "Default_SSE_S3")
        .s("AuthenticationMethod", "AuthHeader")
        .s("x-amz-id-2", &random(rng, B64, 76))
        .n("bytesTransferredOut", bytes_out);
}

fn object_key(rng: &mut FileRng, t: i64) -> String {
    let d = crate::time::civil(t);
    match rng.gen_range(0..4) {
        0 => format!(
            "events/dt={}-{:02}-{:02}/part-{:05}-{}.parquet",
            d.year,
            d.month,
            d.day,
            rng.gen_range(0..200),
            uuid(rng)
        ),
        1 => format!(
            "logs/{}/{:02}/{:02}/{}.gz",
            d.year,
            d.month,
            d.day,
            random(rng, HEX, 16)
        ),
        2 => format!(
            "uploads/{}/{}.json",
            pick_str(rng, USER_NAMES),
            random(rng, ALNUM, 12)
        ),
        _ => format!(
            "builds/{}/{}.zip",
            pick_str(rng, FUNCTIONS),
            random(rng, HEX, 12)
        ),
    }
}

fn s3_object<'a>(c: &FileCtx<'a>, rng: &mut FileRng, s: &mut Scratch, t: i64, put: bool) -> Ev<'a> {
    let a = c.account;
    let bucket = pick_str(rng, &a.buckets);
    let key = object_key(rng, t);
    let host = format!("{bucket}.s3.{}.amazonaws.com", c.region);
    let who = if put && rng.gen_bool(0.15) {
        Who::Service("cloudtrail.amazonaws.com")
    } else {
        human(a, rng)
    };
    let size = rng.gen_range(200..5_000_000);
    let mut o = Obj::new(&mut s.req);
    o.s("bucketName", bucket).s("Host", &host).s("key", &key);
    if rng.gen_bool(0.5) {
        o.s("x-id", if put { "PutObject" } else { "GetObject" });
    }
    o.end();
    if put {
        let mut o = Obj::new(&mut s.resp);
        o.s("x-amz-server-side-encryption", "AES256");
        if rng.gen_bool(0.5) {
            o.s("x-amz-version-id", &random(rng, ALNUM, 32));
        }
        o.end();
    }
    let mut o = Obj::new(&mut s.add);
    s3_additional(
        &mut o,
        rng,
        if put { size } else { 0 },
        if put { 0 } else { size },
    );
    o.end();
    let mut r = Arr::new_top(&mut s.res);
    r.o(|o| {
        o.s("type", "AWS::S3::Object")
            .s("ARN", &format!("arn:aws:s3:::{bucket}/{key}"));
    })
    .o(|o| {
        o.s("accountId", &a.id)
            .s("type", "AWS::S3::Bucket")
            .s("ARN", &format!("arn:aws:s3:::{bucket}"));
    });
    r.end();
    let vpce = rng.gen_bool(0.3).then(|| pick_str(rng, &a.vpc_endpoints));
    Ev {
        version: "1.09",
        who,
        source: "s3.amazonaws.com",
        name: if put { "PutObject" } else { "GetObject" },
        error: None,
        request_id: random(rng, UPPER_HEX, 16),
        read_only: !put,
        data: true,
        shared: false,
        vpce,
        host: Some(host),
    }
}

fn lambda_invoke<'a>(c: &FileCtx<'a>, rng: &mut FileRng, s: &mut Scratch) -> Ev<'a> {
    let a = c.account;
    let arn = format!(
        "arn:aws:lambda:{}:{}:function:{}",
        c.region,
        a.id,
        pick_str(rng, &a.functions)
    );
    let who = match rng.gen_range(0..3) {
        0 => Who::Service(pick_str(
            rng,
            &[
                "apigateway.amazonaws.com",
                "events.amazonaws.com",
                "sqs.amazonaws.com",
            ],
        )),
        _ => human(a, rng),
    };
    let mut o = Obj::new(&mut s.req);
    o.s("functionName", &arn);
    if rng.gen_bool(0.3) {
        o.s("invocationType", "Event");
    }
    if rng.gen_bool(0.3) {
        o.s(
            "sourceArn",
            &format!(
                "arn:aws:execute-api:{}:{}:{}/prod/POST/orders",
                c.region,
                a.id,
                random(rng, HEX, 10)
            ),
        );
    }
    o.end();
    let mut o = Obj::new(&mut s.add);
    o.s("functionVersion", &format!("{arn}:$LATEST"));
    o.end();
    let mut r = Arr::new_top(&mut s.res);
    r.o(|o| {
        o.s("accountId", &a.id)
            .s("type", "AWS::Lambda::Function")
            .s("ARN", &arn);
    });
    r.end();
    Ev {
        version: "1.08",
        who,
        source: "lambda.amazonaws.com",
        name: "Invoke",
        error: None,
        request_id: uuid(rng),
        read_only: false,
        data: true,
        shared: false,
        vpce: None,
        host: Some(format!("lambda.{}.amazonaws.com", c.region)),
    }
}

fn ec2_describe<'a>(c: &FileCtx<'a>, rng: &mut FileRng, s: &mut Scratch) -> Ev<'a> {
    let a = c.account;
    let name = pick_str(
        rng,
        &[
            "DescribeInstances",
            "DescribeSecurityGroups",
            "DescribeVolumes",
            "DescribeSubnets",
            "DescribeInstanceStatus",
        ],
    );
    let mut o = Obj::new(&mut s.req);
    match name {
        "DescribeInstances" | "DescribeInstanceStatus" => {
            if rng.gen_bool(0.5) {
                let n = rng.gen_range(1..4);
                o.o("instancesSet", |o| {
                    o.a("items", |arr| {
                        for _ in 0..n {
                            arr.o(|o| {
                                o.s("instanceId", pick_str(rng, &a.instances));
                            });
                        }
                    });
                })
                .o("filterSet", |_| {});
            } else {
                o.n("maxResults", 1000)
                    .o("instancesSet", |_| {})
                    .o("filterSet", |o| {
                        o.a("items", |arr| {
                            arr.o(|o| {
                                o.s("name", "tag:Environment").o("valueSet", |o| {
                                    o.a("items", |arr| {
                                        arr.o(|o| {
                                            o.s("value", pick_str(rng, ENVS));
                                        });
                                    });
                                });
                            });
                        });
                    });
            }
            if name == "DescribeInstanceStatus" {
                o.t("includeAllInstances", true);
            }
        }
        "DescribeSecurityGroups" => {
            o.o("securityGroupSet", |o| {
                o.a("items", |arr| {
                    arr.o(|o| {
                        o.s("groupId", pick_str(rng, &a.security_groups));
                    });
                });
            })
            .o("securityGroupIdSet", |_| {})
            .o("filterSet", |_| {});
        }
        _ => {
            o.o("filterSet", |o| {
                o.a("items", |arr| {
                    arr.o(|o| {
                        o.s("name", "vpc-id").o("valueSet", |o| {
                            o.a("items", |arr| {
                                arr.o(|o| {
                                    o.s("value", &format!("vpc-0{}", random(rng, HEX, 16)));
                                });
                            });
                        });
                    });
                });
            });
        }
    }
    o.end();
    let who = if rng.gen_bool(0.2) {
        Who::Service("autoscaling.amazonaws.com")
    } else {
        human(a, rng)
    };
    Ev {
        version: "1.08",
        who,
        source: "ec2.amazonaws.com",
        name,
        error: None,
        request_id: uuid(rng),
        read_only: true,
        data: false,
        shared: false,
        vpce: None,
        host: Some(format!("ec2.{}.amazonaws.com", c.region)),
    }
}

fn ec2_run_denied<'a>(c: &FileCtx<'a>, rng: &mut FileRng, s: &mut Scratch) -> Ev<'a> {
    let a = c.account;
    let who = human(a, rng);
    let caller = match &who {
        Who::User(u) => format!("arn:aws:iam::{}:user/{}", a.id, u.name),
        Who::Role(r, session) => format!("arn:aws:sts::{}:assumed-role/{}/{session}", a.id, r.name),
        Who::Service(svc) => (*svc).to_owned(),
    };
    let message = format!(
        "You are not authorized to perform this operation. User: {caller} is not authorized to perform: ec2:RunInstances on resource: arn:aws:ec2:{}:{}:instance/* because no identity-based policy allows the ec2:RunInstances action. Encoded authorization failure message: {}",
        c.region,
        a.id,
        {
            let n = 180 + rng.gen_range(0..120);
            random(rng, ALNUM, n)
        }
    );
    let mut o = Obj::new(&mut s.req);
    o.o("instancesSet", |o| {
        o.a("items", |arr| {
            arr.o(|o| {
                o.s("imageId", &format!("ami-0{}", random(rng, HEX, 16)))
                    .n("minCount", 1)
                    .n("maxCount", 1);
            });
        });
    })
    .s(
        "instanceType",
        pick_str(rng, &["t3.micro", "m6i.large", "c7g.xlarge", "r6i.2xlarge"]),
    )
    .o("blockDeviceMapping", |_| {})
    .o("monitoring", |o| {
        o.t("enabled", false);
    })
    .t("disableApiTermination", false)
    .t("disableApiStop", false)
    .s("clientToken", &uuid(rng));
    o.end();
    Ev {
        version: "1.09",
        who,
        source: "ec2.amazonaws.com",
        name: "RunInstances",
        error: Some(("Client.UnauthorizedOperation", message)),
        request_id: uuid(rng),
        read_only: false,
        data: false,
        shared: false,
        vpce: None,
        host: Some(format!("ec2.{}.amazonaws.com", c.region)),
    }
}

fn sts_assume_role<'a>(c: &FileCtx<'a>, rng: &mut FileRng, s: &mut Scratch, t: i64) -> Ev<'a> {
    let a = c.account;
    let role = pick(rng, &a.roles);
    let session = pick_str(rng, &role.sessions);
    let cross = rng.gen_bool(0.25);
    let role_account = if cross { &a.partner } else { &a.id };
    let role_arn = format!("arn:aws:iam::{role_account}:role/{}", role.name);
    let who = match rng.gen_range(0..4) {
        0 => Who::Service(pick_str(
            rng,
            &[
                "ecs-tasks.amazonaws.com",
                "lambda.amazonaws.com",
                "ec2.amazonaws.com",
            ],
        )),
        _ => human(a, rng),
    };
    let duration = *pick(rng, &[900i64, 3600, 3600, 43_200]);
    Obj::new(&mut s.req)
        .s("roleArn", &role_arn)
        .s("roleSessionName", session)
        .n("durationSeconds", duration)
        .end_ref();
    let mut o = Obj::new(&mut s.resp);
    o.o("credentials", |o| {
        o.s("accessKeyId", &format!("ASIA{}", random(rng, BASE32, 16)))
            .s("sessionToken", &{
                let n = 80 + rng.gen_range(0..100);
                format!("IQoJb3JpZ2luX2VjE{}", random(rng, B64, n))
            })
            .s("expiration", &sts_expiration(t + duration));
    })
    .o("assumedRoleUser", |o| {
        o.s("assumedRoleId", &format!("{}:{session}", role.role_id))
            .s(
                "arn",
                &format!(
                    "arn:aws:sts::{role_account}:assumed-role/{}/{session}",
                    role.name
                ),
            );
    });
    o.end();
    let mut r = Arr::new_top(&mut s.res);
    r.o(|o| {
        o.s("accountId", role_account)
            .s("type", "AWS::IAM::Role")
            .s("ARN", &role_arn);
    });
    r.end();
    Ev {
        version: "1.08",
        who,
        source: "sts.amazonaws.com",
        name: "AssumeRole",
        error: None,
        request_id: uuid(rng),
        read_only: true,
        data: false,
        shared: cross,
        vpce: None,
        host: Some(format!("sts.{}.amazonaws.com", c.region)),
    }
}

fn sts_get_caller_identity<'a>(c: &FileCtx<'a>, rng: &mut FileRng) -> Ev<'a> {
    Ev {
        version: "1.08",
        who: human(c.account, rng),
        source: "sts.amazonaws.com",
        name: "GetCallerIdentity",
        error: None,
        request_id: uuid(rng),
        read_only: true,
        data: false,
        shared: false,
        vpce: None,
        host: Some(format!("sts.{}.amazonaws.com", c.region)),
    }
}

fn kms_decrypt<'a>(c: &FileCtx<'a>, rng: &mut FileRng, s: &mut Scratch) -> Ev<'a> {
    let a = c.account;
    let service = rng.gen_bool(0.6);
    let who = if service {
        Who::Service(pick_str(
            rng,
            &[
                "s3.amazonaws.com",
                "secretsmanager.amazonaws.com",
                "ssm.amazonaws.com",
                "logs.amazonaws.com",
            ],
        ))
    } else {
        human(a, rng)
    };
    let key_arn = format!(
        "arn:aws:kms:{}:{}:key/{}",
        c.region,
        a.id,
        pick_str(rng, &a.kms_keys)
    );
    let mut o = Obj::new(&mut s.req);
    o.o("encryptionContext", |o| {
        if rng.gen_bool(0.5) {
            o.s(
                "aws:s3:arn",
                &format!(
                    "arn:aws:s3:::{}/{}",
                    pick_str(rng, &a.buckets),
                    random(rng, HEX, 20)
                ),
            );
        } else {
            o.s(
                "aws:lambda:FunctionArn",
                &format!(
                    "arn:aws:lambda:{}:{}:function:{}",
                    c.region,
                    a.id,
                    pick_str(rng, &a.functions)
                ),
            );
        }
    })
    .s("encryptionAlgorithm", "SYMMETRIC_DEFAULT");
    o.end();
    let mut r = Arr::new_top(&mut s.res);
    r.o(|o| {
        o.s("accountId", &a.id)
            .s("type", "AWS::KMS::Key")
            .s("ARN", &key_arn);
    });
    r.end();
    Ev {
        version: "1.08",
        who,
        source: "kms.amazonaws.com",
        name: "Decrypt",
        error: None,
        request_id: uuid(rng),
        read_only: true,
        data: false,
        shared: service && rng.gen_bool(0.5),
        vpce: None,
        host: (!service).then(|| format!("kms.{}.amazonaws.com", c.region)),
    }
}

fn iam_read<'a>(c: &FileCtx<'a>, rng: &mut FileRng, s: &mut Scratch) -> Ev<'a> {
    let a = c.account;
    let name = pick_str(
        rng,
        &[
            "GetUser",
            "ListRoles",
            "ListAttachedRolePolicies",
            "GetRole",
            "ListAccessKeys",
        ],
    );
    match name {
        "GetUser" | "ListAccessKeys" => {
            Obj::new(&mut s.req)
                .s("userName", &pick(rng, &a.users).name)
                .end_ref();
        }
        "ListAttachedRolePolicies" | "GetRole" => {
            Obj::new(&mut s.req)
                .s("roleName", &pick(rng, &a.roles).name)
                .end_ref();
        }
        _ => {}
    }
    Ev {
        version: "1.08",
        who: human(a, rng),
        source: "iam.amazonaws.com",
        name,
        error: None,
        request_id: uuid(rng),
        read_only: true,
        data: false,
        shared: false,
        vpce: None,
        host: Some("iam.amazonaws.com".to_owned()),
    }
}

fn s3_list_buckets<'a>(c: &FileCtx<'a>, rng: &mut FileRng, s: &mut Scratch) -> Ev<'a> {
    let host = format!("s3.{}.amazonaws.com", c.region);
    Obj::new(&mut s.req).s("Host", &host).end_ref();
    let mut o = Obj::new(&mut s.add);
    let out_bytes = rng.gen_range(300..9000);
    s3_additional(&mut o, rng, 0, out_bytes);
    o.end();
    Ev {
        version: "1.09",
        who: human(c.account, rng),
        source: "s3.amazonaws.com",
        name: "ListBuckets",
        error: None,
        request_id: random(rng, UPPER_HEX, 16),
        read_only: true,
        data: false,
        shared: false,
        vpce: None,
        host: Some(host),
    }
}

fn ssm_or_secrets<'a>(c: &FileCtx<'a>, rng: &mut FileRng, s: &mut Scratch) -> Ev<'a> {
    let a = c.account;
    let (source, name) = if rng.gen_bool(0.6) {
        let mut o = Obj::new(&mut s.req);
        o.s("name", pick_str(rng, &a.parameters))
            .t("withDecryption", rng.gen_bool(0.5));
        o.end();
        ("ssm.amazonaws.com", "GetParameter")
    } else {
        let secret = format!(
            "arn:aws:secretsmanager:{}:{}:secret:{}",
            c.region,
            a.id,
            pick_str(rng, &a.secrets)
        );
        Obj::new(&mut s.req).s("secretId", &secret).end_ref();
        ("secretsmanager.amazonaws.com", "GetSecretValue")
    };
    Ev {
        version: "1.08",
        who: human(a, rng),
        source,
        name,
        error: None,
        request_id: uuid(rng),
        read_only: true,
        data: false,
        shared: false,
        vpce: rng.gen_bool(0.2).then(|| pick_str(rng, &a.vpc_endpoints)),
        host: Some(format!(
            "{}.{}.amazonaws.com",
            source.trim_end_matches(".amazonaws.com"),
            c.region
        )),
    }
}

fn logs_create_stream<'a>(c: &FileCtx<'a>, rng: &mut FileRng, s: &mut Scratch, t: i64) -> Ev<'a> {
    let a = c.account;
    let d = crate::time::civil(t);
    let mut o = Obj::new(&mut s.req);
    o.s(
        "logGroupName",
        &format!("/aws/lambda/{}", pick_str(rng, &a.functions)),
    )
    .s(
        "logStreamName",
        &format!(
            "{}/{:02}/{:02}/[$LATEST]{}",
            d.year,
            d.month,
            d.day,
            random(rng, HEX, 32)
        ),
    );
    o.end();
    Ev {
        version: "1.08",
        who: human(a, rng),
        source: "logs.amazonaws.com",
        name: "CreateLogStream",
        error: None,
        request_id: uuid(rng),
        read_only: false,
        data: false,
        shared: false,
        vpce: None,
        host: Some(format!("logs.{}.amazonaws.com", c.region)),
    }
}

/// Writes one record for `ctx` into `out` and returns its event time.
///
/// `unique` makes the eventID unique across a corpus (see [`unique_uuid`]).
pub(crate) fn write_record(
    out: &mut Vec<u8>,
    c: &FileCtx<'_>,
    rng: &mut FileRng,
    unique: u64,
    s: &mut Scratch,
) -> i64 {
    s.req.clear();
    s.resp.clear();
    s.add.clear();
    s.res.clear();
    let t = c.window_start + rng.gen_range(0..c.window_len.max(1));
    let roll = rng.gen_range(0..100u32);
    let mut ev = match roll {
        0..=2 => sts_get_caller_identity(c, rng),
        3..=11 => s3_object(c, rng, s, t, false),
        12..=17 => s3_object(c, rng, s, t, true),
        18..=25 => lambda_invoke(c, rng, s),
        26..=43 => ec2_describe(c, rng, s),
        44..=45 => ec2_run_denied(c, rng, s),
        46..=53 => sts_assume_role(c, rng, s, t),
        54..=73 => kms_decrypt(c, rng, s),
        74..=80 => iam_read(c, rng, s),
        81..=84 => s3_list_buckets(c, rng, s),
        85..=93 => ssm_or_secrets(c, rng, s),
        94..=96 => sts_get_caller_identity(c, rng),
        _ => logs_create_stream(c, rng, s, t),
    };
    if ev.error.is_none() && !matches!(ev.who, Who::Service(_)) && rng.gen_bool(0.04) {
        let caller = match &ev.who {
            Who::User(u) => format!("arn:aws:iam::{}:user/{}", c.account.id, u.name),
            Who::Role(r, session) => format!(
                "arn:aws:sts::{}:assumed-role/{}/{session}",
                c.account.id, r.name
            ),
            Who::Service(svc) => (*svc).to_owned(),
        };
        let action = format!(
            "{}:{}",
            ev.source.trim_end_matches(".amazonaws.com"),
            ev.name
        );
        ev.error = Some((
            "AccessDenied",
            format!(
                "User: {caller} is not authorized to perform: {action} because no identity-based policy allows the {action} action"
            ),
        ));
        s.resp.clear();
    }
    if ev.version == "1.08" && rng.gen_bool(0.3) {
        ev.version = "1.09";
    }
    let a = c.account;
    let mut time = [0u8; 20];
    iso_into(t, &mut time);
    let time = std::str::from_utf8(&time).unwrap_or("1970-01-01T00:00:00Z");
    let (ip, ua): (String, &str) = match &ev.who {
        Who::Service(svc) => ((*svc).to_owned(), svc),
        _ => {
            let ip = if rng.gen_bool(0.7) {
                pick_str(rng, &a.ips).to_owned()
            } else {
                format!(
                    "{}.{}.{}.{}",
                    rng.gen_range(3..224),
                    rng.gen_range(0..256),
                    rng.gen_range(0..256),
                    rng.gen_range(1..255)
                )
            };
            (ip, pick_str(rng, USER_AGENTS))
        }
    };
    let mut o = Obj::new(out);
    o.s("eventVersion", ev.version);
    o.o("userIdentity", |o| match &ev.who {
        Who::User(u) => {
            o.s("type", "IAMUser")
                .s("principalId", &u.principal_id)
                .s("arn", &format!("arn:aws:iam::{}:user/{}", a.id, u.name))
                .s("accountId", &a.id)
                .s("accessKeyId", &u.access_key)
                .s("userName", &u.name);
        }
        Who::Role(r, session) => {
            o.s("type", "AssumedRole")
                .s("principalId", &format!("{}:{session}", r.role_id))
                .s(
                    "arn",
                    &format!("arn:aws:sts::{}:assumed-role/{}/{session}", a.id, r.name),
                )
                .s("accountId", &a.id)
                .s("accessKeyId", &format!("ASIA{}", random(rng, BASE32, 16)))
                .o("sessionContext", |o| {
                    o.o("sessionIssuer", |o| {
                        o.s("type", "Role")
                            .s("principalId", &r.role_id)
                            .s("arn", &format!("arn:aws:iam::{}:role/{}", a.id, r.name))
                            .s("accountId", &a.id)
                            .s("userName", &r.name);
                    })
                    .o("webIdFederationData", |_| {})
                    .o("attributes", |o| {
                        o.s("creationDate", &iso(t - rng.gen_range(0..3600)))
                            .s("mfaAuthenticated", "false");
                    });
                    if session.starts_with("i-") {
                        o.s("ec2RoleDelivery", "2.0");
                    }
                });
            if ev.data && rng.gen_bool(0.1) {
                o.s("invokedBy", "athena.amazonaws.com");
            }
        }
        Who::Service(svc) => {
            o.s("type", "AWSService").s("invokedBy", svc);
        }
    });
    o.s("eventTime", time)
        .s("eventSource", ev.source)
        .s("eventName", ev.name)
        .s("awsRegion", c.region)
        .s("sourceIPAddress", &ip)
        .s("userAgent", ua);
    if let Some((code, message)) = &ev.error {
        o.s("errorCode", code).s("errorMessage", message);
    }
    o.raw("requestParameters", &s.req)
        .raw("responseElements", &s.resp);
    if !s.add.is_empty() {
        o.raw("additionalEventData", &s.add);
    }
    o.s("requestID", &ev.request_id)
        .s("eventID", &unique_uuid(unique, rng))
        .t("readOnly", ev.read_only);
    if !s.res.is_empty() {
        o.raw("resources", &s.res);
    }
    o.s("eventType", "AwsApiCall")
        .t("managementEvent", !ev.data)
        .s("recipientAccountId", &a.id);
    if ev.shared {
        o.s("sharedEventID", &uuid(rng));
    }
    if let Some(vpce) = ev.vpce {
        o.s("vpcEndpointId", vpce);
        if ev.data {
            o.s("vpcEndpointAccountId", &a.id);
        }
    }
    o.s("eventCategory", if ev.data { "Data" } else { "Management" });
    if let Some(host) = &ev.host {
        let (version, suite) = pick(rng, TLS);
        o.o("tlsDetails", |o| {
            o.s("tlsVersion", version)
                .s("cipherSuite", suite)
                .s("clientProvidedHostHeader", host);
        });
    }
    if ua == "console.amazonaws.com" || ua.starts_with("Mozilla") {
        o.s("sessionCredentialFromConsole", "true");
    }
    o.end();
    t
}
