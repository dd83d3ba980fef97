//! The borrowed, typed view of one CloudTrail record.
//!
//! An [`Event`] borrows from the decoder's buffers for the duration of a
//! callback, so building one costs no allocation. It always carries
//! [`Event::raw`], the record's exact original bytes: numbers such as `2.0`,
//! escapes and key order stay as written, and fields trailmill does not know
//! are kept there (and listed by [`Event::unknown_fields`]).
//!
//! Top-level scalar fields are plain struct fields, filled while the record is
//! walked once. Nested parts (`userIdentity`, `resources`, `tlsDetails`,
//! `addendum`) are typed views built on demand, from the same parse, by the
//! accessor methods. Free-form objects (`requestParameters`,
//! `responseElements`, …) are [`RawJson`] slices of the original bytes.
//!
//! A typed field is `None` when the field is absent, `null`, or not of its
//! documented JSON type; the record's bytes are never altered or dropped.

use std::fmt;

use crate::json::{At, Doc, Kind};

/// The exact text of one JSON value, as it appears in the source file.
///
/// It is a `str`: the decoder validates a file's whole text as UTF-8 once,
/// and cuts values from it at ASCII characters, so no value's text is
/// checked again. (Checking each value again, when this held bytes, cost
/// the Parquet and Iceberg sinks 2.5% of their CPU.)
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RawJson<'a>(&'a str);

impl<'a> RawJson<'a> {
    /// Wraps text known to hold one JSON value.
    pub fn new(text: &'a str) -> Self {
        RawJson(text)
    }

    /// The value's bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.0.as_bytes()
    }

    /// The value's text.
    pub fn as_str(&self) -> &'a str {
        self.0
    }

    /// True when the value is the literal `null`.
    pub fn is_null(&self) -> bool {
        self.0 == "null"
    }
}

impl fmt::Debug for RawJson<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RawJson({})", self.as_str())
    }
}

impl fmt::Display for RawJson<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A boolean field: JSON `true` or `false`, or (as some older records write
/// them) the strings `"true"` and `"false"`.
fn bool_at(doc: &Doc<'_>, at: At) -> Option<bool> {
    match doc.kind(at) {
        Kind::True => Some(true),
        Kind::False => Some(false),
        Kind::String => match doc.raw(at) {
            "\"true\"" => Some(true),
            "\"false\"" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// A free-form field's exact text; `None` when it is `null`.
fn raw_json_at<'a>(doc: &Doc<'a>, at: At) -> Option<RawJson<'a>> {
    (doc.kind(at) != Kind::Null).then(|| RawJson(doc.raw(at)))
}

/// The position of a field's value when it is an object.
fn object_at(doc: &Doc<'_>, at: At) -> Option<At> {
    (doc.kind(at) == Kind::Object).then_some(at)
}

/// One CloudTrail record: typed, borrowed views of the documented fields plus
/// the record's exact original bytes.
///
/// Field names follow the CloudTrail record contents reference, in snake case.
#[derive(Clone, Copy)]
#[non_exhaustive]
pub struct Event<'a> {
    /// The record's exact original text, from `{` to `}`.
    pub raw: &'a str,
    /// `eventVersion`, e.g. `1.08`.
    pub event_version: Option<&'a str>,
    /// `eventTime`, `YYYY-MM-DDTHH:MM:SSZ`.
    pub event_time: Option<&'a str>,
    /// `eventSource`, e.g. `s3.amazonaws.com`.
    pub event_source: Option<&'a str>,
    /// `eventName`, the API action.
    pub event_name: Option<&'a str>,
    /// `awsRegion`.
    pub aws_region: Option<&'a str>,
    /// `sourceIPAddress` (not validated: anonymised data uses values such as `255.090.254.5`).
    pub source_ip_address: Option<&'a str>,
    /// `userAgent`.
    pub user_agent: Option<&'a str>,
    /// `errorCode`, when the request failed.
    pub error_code: Option<&'a str>,
    /// `errorMessage`, when the request failed.
    pub error_message: Option<&'a str>,
    /// `requestID`, a plain string.
    pub request_id: Option<&'a str>,
    /// `eventID`, a plain string (the deduplication key).
    pub event_id: Option<&'a str>,
    /// `eventType`, e.g. `AwsApiCall`.
    pub event_type: Option<&'a str>,
    /// `apiVersion`.
    pub api_version: Option<&'a str>,
    /// `readOnly`.
    pub read_only: Option<bool>,
    /// `managementEvent`.
    pub management_event: Option<bool>,
    /// `recipientAccountId`.
    pub recipient_account_id: Option<&'a str>,
    /// `sharedEventID`.
    pub shared_event_id: Option<&'a str>,
    /// `vpcEndpointId`.
    pub vpc_endpoint_id: Option<&'a str>,
    /// `vpcEndpointAccountId`.
    pub vpc_endpoint_account_id: Option<&'a str>,
    /// `eventCategory`: `Management`, `Data`, `Insight` or `NetworkActivity`.
    pub event_category: Option<&'a str>,
    /// `sessionCredentialFromConsole` (CloudTrail writes it as the string `"true"`).
    pub session_credential_from_console: Option<&'a str>,
    /// `requestParameters`, as written.
    pub request_parameters: Option<RawJson<'a>>,
    /// `responseElements`, as written.
    pub response_elements: Option<RawJson<'a>>,
    /// `additionalEventData`, as written.
    pub additional_event_data: Option<RawJson<'a>>,
    /// `serviceEventDetails`, as written.
    pub service_event_details: Option<RawJson<'a>>,
    /// `eventContext`, as written.
    pub event_context: Option<RawJson<'a>>,
    /// `edgeDeviceDetails`, as written.
    pub edge_device_details: Option<RawJson<'a>>,
    /// `insightDetails` (Insights events), as written.
    pub insight_details: Option<RawJson<'a>>,
    doc: &'a Doc<'a>,
    at: At,
    user_identity: Option<At>,
    resources: Option<At>,
    tls_details: Option<At>,
    addendum: Option<At>,
    has_unknown: bool,
}

/// A top-level key as its length and its first eight bytes (little-endian,
/// zero-padded): what [`Field::of`] dispatches on.
type Key = (usize, u64);

/// The [`Key`] of `k`.
#[inline(always)]
const fn key(k: &[u8]) -> Key {
    let mut head = [0u8; 8];
    let mut i = 0;
    while i < k.len() && i < 8 {
        head[i] = k[i];
        i += 1;
    }
    (k.len(), u64::from_le_bytes(head))
}

/// True when `k`, whose [`Key`] is that of `name`, is `name`: the bytes
/// after the first eight are compared (as the last eight, for keys of up to
/// 16 bytes).
#[inline(always)]
fn rest_is(k: &[u8], name: &'static [u8]) -> bool {
    let n = name.len();
    if n <= 8 {
        true
    } else if n <= 16 {
        let last = |b: &[u8]| b[b.len() - 8..].try_into().map(u64::from_le_bytes).ok();
        last(k) == last(name)
    } else {
        k == name
    }
}

/// Declares, from one list of the top-level fields [`Event`] knows (in
/// CloudTrail's documented order): [`KNOWN_FIELDS`], the `Field` enum, and
/// `Field::of`, which names a key's field.
macro_rules! known_fields {
    ($($field:ident = $name:literal,)*) => {
        /// The top-level fields [`Event`] knows; anything else is reported by [`Event::unknown_fields`].
        pub const KNOWN_FIELDS: &[&str] = &[$($name),*];

        /// A top-level field [`Event`] knows.
        #[derive(Clone, Copy)]
        enum Field {
            $($field,)*
        }

        /// The [`Key`] of each known field, named as its [`Field`].
        #[allow(non_upper_case_globals)]
        mod heads {
            use super::{Key, key};
            $(pub(super) const $field: Key = key($name.as_bytes());)*
        }

        impl Field {
            /// The field `k` names, if it is a known one.
            ///
            /// Keys are told apart by their length and first eight bytes, one
            /// integer comparison each, and then confirmed whole: a `match` on
            /// the strings compared candidates of the same length with
            /// `memcmp` calls, which were 2% of a filtered decode.
            #[inline(always)]
            fn of(k: &[u8]) -> Option<Field> {
                let head = match k.first_chunk::<8>() {
                    Some(head) => (k.len(), u64::from_le_bytes(*head)),
                    None => key(k),
                };
                match head {
                    $(heads::$field if rest_is(k, $name.as_bytes()) => Some(Field::$field),)*
                    _ => None,
                }
            }
        }
    };
}

known_fields! {
    EventVersion = "eventVersion",
    UserIdentity = "userIdentity",
    EventTime = "eventTime",
    EventSource = "eventSource",
    EventName = "eventName",
    AwsRegion = "awsRegion",
    SourceIPAddress = "sourceIPAddress",
    UserAgent = "userAgent",
    ErrorCode = "errorCode",
    ErrorMessage = "errorMessage",
    RequestParameters = "requestParameters",
    ResponseElements = "responseElements",
    AdditionalEventData = "additionalEventData",
    RequestID = "requestID",
    EventID = "eventID",
    EventType = "eventType",
    ApiVersion = "apiVersion",
    ManagementEvent = "managementEvent",
    ReadOnly = "readOnly",
    Resources = "resources",
    RecipientAccountId = "recipientAccountId",
    ServiceEventDetails = "serviceEventDetails",
    SharedEventID = "sharedEventID",
    VpcEndpointId = "vpcEndpointId",
    VpcEndpointAccountId = "vpcEndpointAccountId",
    EventCategory = "eventCategory",
    Addendum = "addendum",
    SessionCredentialFromConsole = "sessionCredentialFromConsole",
    EdgeDeviceDetails = "edgeDeviceDetails",
    TlsDetails = "tlsDetails",
    EventContext = "eventContext",
    InsightDetails = "insightDetails",
}

impl<'a> Event<'a> {
    /// Appends to `batch` the view of the record object at `at`, walking its
    /// members once; returns the structural index of the record's closing `}`.
    /// The view is built where it will stay: an `Event` is some 600 bytes,
    /// and building it on the stack first would copy each one once more.
    ///
    /// With `early`, a record whose `eventSource` or `eventName` fails it is read only as far
    /// as the file's checks and the filter need (see [`crate::DecodeOptions::early_filter`]);
    /// the second value is then false, and the caller drops the view.
    pub(crate) fn push_from_doc(
        batch: &mut Vec<Event<'a>>,
        doc: &'a Doc<'a>,
        at: At,
        early: Option<&crate::filter::EarlyFilter>,
    ) -> (usize, bool) {
        batch.push(Event {
            raw: "",
            event_version: None,
            event_time: None,
            event_source: None,
            event_name: None,
            aws_region: None,
            source_ip_address: None,
            user_agent: None,
            error_code: None,
            error_message: None,
            request_id: None,
            event_id: None,
            event_type: None,
            api_version: None,
            read_only: None,
            management_event: None,
            recipient_account_id: None,
            shared_event_id: None,
            vpc_endpoint_id: None,
            vpc_endpoint_account_id: None,
            event_category: None,
            session_credential_from_console: None,
            request_parameters: None,
            response_elements: None,
            additional_event_data: None,
            service_event_details: None,
            event_context: None,
            edge_device_details: None,
            insight_details: None,
            doc,
            at,
            user_identity: None,
            resources: None,
            tls_details: None,
            addendum: None,
            has_unknown: false,
        });
        let Some(e) = batch.last_mut() else {
            unreachable!("an event was just pushed")
        };
        let mut wanted = true;
        let close = match early {
            None => doc.members(at, |key, v| e.set(doc, key, v)),
            Some(early) => {
                // Once the core fields are read (the file's checks need
                // them), and the source if the filter has a condition on it,
                // a record that fails the filter is read no further.
                let mut decided = false;
                let needs_source = early.needs_source();
                let close = doc.members_while(at, |key, v| {
                    e.set(doc, key, v);
                    if !decided
                        && e.event_name.is_some()
                        && e.event_version.is_some()
                        && e.event_time.is_some()
                        && (!needs_source || e.event_source.is_some())
                    {
                        decided = true;
                        wanted = early.matches(e.event_source, e.event_name);
                    }
                    !decided || wanted
                });
                if !decided {
                    // A record without one of those fields, read whole.
                    wanted = early.matches(e.event_source, e.event_name);
                }
                close
            }
        };
        if wanted {
            e.raw = doc.raw(at);
        }
        (close, wanted)
    }

    /// Sets the field that `key` names to the value at `v`, or notes an
    /// unknown field.
    #[inline(always)]
    fn set(&mut self, doc: &'a Doc<'a>, key: &'a str, v: At) {
        let Some(field) = Field::of(key.as_bytes()) else {
            self.has_unknown = true;
            return;
        };
        match field {
            Field::EventVersion => self.event_version = doc.str_at(v),
            Field::UserIdentity => self.user_identity = object_at(doc, v),
            Field::EventTime => self.event_time = doc.str_at(v),
            Field::EventSource => self.event_source = doc.str_at(v),
            Field::EventName => self.event_name = doc.str_at(v),
            Field::AwsRegion => self.aws_region = doc.str_at(v),
            Field::SourceIPAddress => self.source_ip_address = doc.str_at(v),
            Field::UserAgent => self.user_agent = doc.str_at(v),
            Field::ErrorCode => self.error_code = doc.str_at(v),
            Field::ErrorMessage => self.error_message = doc.str_at(v),
            Field::RequestParameters => self.request_parameters = raw_json_at(doc, v),
            Field::ResponseElements => self.response_elements = raw_json_at(doc, v),
            Field::AdditionalEventData => self.additional_event_data = raw_json_at(doc, v),
            Field::RequestID => self.request_id = doc.str_at(v),
            Field::EventID => self.event_id = doc.str_at(v),
            Field::EventType => self.event_type = doc.str_at(v),
            Field::ApiVersion => self.api_version = doc.str_at(v),
            Field::ManagementEvent => self.management_event = bool_at(doc, v),
            Field::ReadOnly => self.read_only = bool_at(doc, v),
            Field::Resources => self.resources = (doc.kind(v) == Kind::Array).then_some(v),
            Field::RecipientAccountId => self.recipient_account_id = doc.str_at(v),
            Field::ServiceEventDetails => self.service_event_details = raw_json_at(doc, v),
            Field::SharedEventID => self.shared_event_id = doc.str_at(v),
            Field::VpcEndpointId => self.vpc_endpoint_id = doc.str_at(v),
            Field::VpcEndpointAccountId => self.vpc_endpoint_account_id = doc.str_at(v),
            Field::EventCategory => self.event_category = doc.str_at(v),
            Field::Addendum => self.addendum = object_at(doc, v),
            Field::SessionCredentialFromConsole => {
                self.session_credential_from_console = doc.str_at(v)
            }
            Field::EdgeDeviceDetails => self.edge_device_details = raw_json_at(doc, v),
            Field::TlsDetails => self.tls_details = object_at(doc, v),
            Field::EventContext => self.event_context = raw_json_at(doc, v),
            Field::InsightDetails => self.insight_details = raw_json_at(doc, v),
        }
    }

    /// The record's exact original text (the same as [`Event::raw`]).
    pub fn raw_str(&self) -> &'a str {
        self.raw
    }

    /// True when [`Event::raw`] holds a line break (`\n` or `\r`), which
    /// JSON allows only as whitespace between tokens: a record must then be
    /// rewritten to fit on one line. Free for a file with no byte below
    /// 0x20 at all, as CloudTrail writes them (stage 1 of the index saw
    /// every byte); other files' records are searched.
    pub fn raw_has_line_break(&self) -> bool {
        !self.doc.control_free() && memchr::memchr2(b'\n', b'\r', self.raw.as_bytes()).is_some()
    }

    /// `userIdentity`, with its nested session context and delegation details.
    pub fn user_identity(&self) -> Option<UserIdentity<'a>> {
        self.user_identity
            .map(|at| UserIdentity::from_doc(self.doc, at))
    }

    /// The `resources` array.
    pub fn resources(&self) -> impl Iterator<Item = Resource<'a>> + use<'a> {
        let mut out = Vec::new();
        if let Some(at) = self.resources {
            let doc = self.doc;
            doc.elements(at, |el| {
                if doc.kind(el) == Kind::Object {
                    out.push(Resource::from_doc(doc, el));
                }
            });
        }
        out.into_iter()
    }

    /// The `resources` array, as written (stores that keep it as JSON text).
    pub fn resources_raw(&self) -> Option<RawJson<'a>> {
        self.resources.map(|at| RawJson(self.doc.raw(at)))
    }

    /// The `tlsDetails` object, as written.
    pub fn tls_details_raw(&self) -> Option<RawJson<'a>> {
        self.tls_details.map(|at| RawJson(self.doc.raw(at)))
    }

    /// The `addendum` object, as written.
    pub fn addendum_raw(&self) -> Option<RawJson<'a>> {
        self.addendum.map(|at| RawJson(self.doc.raw(at)))
    }

    /// `tlsDetails`.
    pub fn tls_details(&self) -> Option<TlsDetails<'a>> {
        let doc = self.doc;
        self.tls_details.map(|at| {
            let mut t = TlsDetails {
                tls_version: None,
                cipher_suite: None,
                client_provided_host_header: None,
            };
            doc.members(at, |k, v| match k {
                "tlsVersion" => t.tls_version = doc.str_at(v),
                "cipherSuite" => t.cipher_suite = doc.str_at(v),
                "clientProvidedHostHeader" => t.client_provided_host_header = doc.str_at(v),
                _ => {}
            });
            t
        })
    }

    /// `addendum`, present on records CloudTrail delivered late or corrected.
    pub fn addendum(&self) -> Option<Addendum<'a>> {
        let doc = self.doc;
        self.addendum.map(|at| {
            let mut a = Addendum {
                reason: None,
                updated_fields: None,
                original_request_id: None,
                original_event_id: None,
            };
            doc.members(at, |k, v| match k {
                "reason" => a.reason = doc.str_at(v),
                "updatedFields" => a.updated_fields = doc.str_at(v),
                "originalRequestID" => a.original_request_id = doc.str_at(v),
                "originalEventID" => a.original_event_id = doc.str_at(v),
                _ => {}
            });
            a
        })
    }

    /// Every top-level member, in the order written, as key and exact value text.
    pub fn fields(&self) -> impl Iterator<Item = (&'a str, RawJson<'a>)> + use<'a> {
        let mut out = Vec::new();
        let doc = self.doc;
        doc.members(self.at, |k, v| out.push((k, RawJson(doc.raw(v)))));
        out.into_iter()
    }

    /// Top-level members not in [`KNOWN_FIELDS`]: kept, never dropped.
    pub fn unknown_fields(&self) -> impl Iterator<Item = (&'a str, RawJson<'a>)> + use<'a> {
        // Known means what the walk that filled the event decided, by the
        // same dispatch, rather than a scan of the list's strings.
        let has_unknown = self.has_unknown;
        self.fields()
            .filter(move |(k, _)| has_unknown && Field::of(k.as_bytes()).is_none())
    }

    /// The major number of `eventVersion` (`1` for `1.08`), if it parses.
    pub fn event_version_major(&self) -> Option<u32> {
        self.event_version?.split('.').next()?.parse().ok()
    }
}

impl fmt::Debug for Event<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("event_id", &self.event_id)
            .field("event_time", &self.event_time)
            .field("event_source", &self.event_source)
            .field("event_name", &self.event_name)
            .field("raw_len", &self.raw.len())
            .finish_non_exhaustive()
    }
}

/// `userIdentity`: who made the request.
#[derive(Clone, Copy, Debug, Default)]
#[non_exhaustive]
pub struct UserIdentity<'a> {
    /// The whole `userIdentity` object, as written.
    pub raw: Option<RawJson<'a>>,
    /// `type`: `IAMUser`, `AssumedRole`, `Root`, `AWSService`, `FederatedUser`, …
    pub identity_type: Option<&'a str>,
    /// `principalId`.
    pub principal_id: Option<&'a str>,
    /// `arn`.
    pub arn: Option<&'a str>,
    /// `accountId`.
    pub account_id: Option<&'a str>,
    /// `accessKeyId`.
    pub access_key_id: Option<&'a str>,
    /// `userName`.
    pub user_name: Option<&'a str>,
    /// `invokedBy`, for requests made by an AWS service.
    pub invoked_by: Option<&'a str>,
    /// `identityProvider`.
    pub identity_provider: Option<&'a str>,
    /// `credentialId`.
    pub credential_id: Option<&'a str>,
    /// `sessionContext`.
    pub session_context: Option<SessionContext<'a>>,
    /// `onBehalfOf` (IAM Identity Center).
    pub on_behalf_of: Option<OnBehalfOf<'a>>,
    /// `inScopeOf`.
    pub in_scope_of: Option<InScopeOf<'a>>,
}

impl<'a> UserIdentity<'a> {
    fn from_doc(doc: &Doc<'a>, at: At) -> Self {
        let mut u = UserIdentity {
            raw: Some(RawJson(doc.raw(at))),
            ..Default::default()
        };
        doc.members(at, |k, v| match k {
            "type" => u.identity_type = doc.str_at(v),
            "principalId" => u.principal_id = doc.str_at(v),
            "arn" => u.arn = doc.str_at(v),
            "accountId" => u.account_id = doc.str_at(v),
            "accessKeyId" => u.access_key_id = doc.str_at(v),
            "userName" => u.user_name = doc.str_at(v),
            "invokedBy" => u.invoked_by = doc.str_at(v),
            "identityProvider" => u.identity_provider = doc.str_at(v),
            "credentialId" => u.credential_id = doc.str_at(v),
            "sessionContext" if doc.kind(v) == Kind::Object => {
                u.session_context = Some(SessionContext::from_doc(doc, v))
            }
            "onBehalfOf" if doc.kind(v) == Kind::Object => {
                let mut o = OnBehalfOf::default();
                doc.members(v, |k, v| match k {
                    "userId" => o.user_id = doc.str_at(v),
                    "identityStoreArn" => o.identity_store_arn = doc.str_at(v),
                    _ => {}
                });
                u.on_behalf_of = Some(o);
            }
            "inScopeOf" if doc.kind(v) == Kind::Object => {
                let mut o = InScopeOf::default();
                doc.members(v, |k, v| match k {
                    "sourceArn" => o.source_arn = doc.str_at(v),
                    "sourceAccount" => o.source_account = doc.str_at(v),
                    "issuerType" => o.issuer_type = doc.str_at(v),
                    "credentialsIssuedTo" => o.credentials_issued_to = doc.str_at(v),
                    _ => {}
                });
                u.in_scope_of = Some(o);
            }
            _ => {}
        });
        u
    }
}

/// `userIdentity.sessionContext`: details of temporary credentials.
#[derive(Clone, Copy, Debug, Default)]
#[non_exhaustive]
pub struct SessionContext<'a> {
    /// `attributes.creationDate`.
    pub creation_date: Option<&'a str>,
    /// `attributes.mfaAuthenticated` (the string `"true"` or `"false"`).
    pub mfa_authenticated: Option<&'a str>,
    /// `sessionIssuer`: the entity that issued the credentials.
    pub session_issuer: Option<SessionIssuer<'a>>,
    /// `webIdFederationData`.
    pub web_id_federation_data: Option<WebIdFederationData<'a>>,
    /// `sourceIdentity`.
    pub source_identity: Option<&'a str>,
    /// `ec2RoleDelivery`.
    pub ec2_role_delivery: Option<&'a str>,
    /// `assumedRoot`.
    pub assumed_root: Option<&'a str>,
}

impl<'a> SessionContext<'a> {
    fn from_doc(doc: &Doc<'a>, at: At) -> Self {
        let mut c = SessionContext::default();
        doc.members(at, |k, v| match k {
            "attributes" => {
                doc.members(v, |k, v| match k {
                    "creationDate" => c.creation_date = doc.str_at(v),
                    "mfaAuthenticated" => c.mfa_authenticated = doc.str_at(v),
                    _ => {}
                });
            }
            "sessionIssuer" if doc.kind(v) == Kind::Object => {
                let mut i = SessionIssuer::default();
                doc.members(v, |k, v| match k {
                    "type" => i.issuer_type = doc.str_at(v),
                    "principalId" => i.principal_id = doc.str_at(v),
                    "arn" => i.arn = doc.str_at(v),
                    "accountId" => i.account_id = doc.str_at(v),
                    "userName" => i.user_name = doc.str_at(v),
                    _ => {}
                });
                c.session_issuer = Some(i);
            }
            "webIdFederationData" if doc.kind(v) == Kind::Object => {
                let mut w = WebIdFederationData::default();
                doc.members(v, |k, v| match k {
                    "federatedProvider" => w.federated_provider = doc.str_at(v),
                    "attributes" => w.attributes = raw_json_at(doc, v),
                    _ => {}
                });
                c.web_id_federation_data = Some(w);
            }
            "sourceIdentity" => c.source_identity = doc.str_at(v),
            "ec2RoleDelivery" => c.ec2_role_delivery = doc.str_at(v),
            "assumedRoot" => c.assumed_root = doc.str_at(v),
            _ => {}
        });
        c
    }
}

/// `sessionContext.sessionIssuer`.
#[derive(Clone, Copy, Debug, Default)]
#[non_exhaustive]
pub struct SessionIssuer<'a> {
    /// `type`, e.g. `Role`.
    pub issuer_type: Option<&'a str>,
    /// `principalId`.
    pub principal_id: Option<&'a str>,
    /// `arn`.
    pub arn: Option<&'a str>,
    /// `accountId`.
    pub account_id: Option<&'a str>,
    /// `userName`.
    pub user_name: Option<&'a str>,
}

/// `sessionContext.webIdFederationData`.
#[derive(Clone, Copy, Debug, Default)]
#[non_exhaustive]
pub struct WebIdFederationData<'a> {
    /// `federatedProvider`.
    pub federated_provider: Option<&'a str>,
    /// `attributes`, as written.
    pub attributes: Option<RawJson<'a>>,
}

/// `userIdentity.onBehalfOf`.
#[derive(Clone, Copy, Debug, Default)]
#[non_exhaustive]
pub struct OnBehalfOf<'a> {
    /// `userId`.
    pub user_id: Option<&'a str>,
    /// `identityStoreArn`.
    pub identity_store_arn: Option<&'a str>,
}

/// `userIdentity.inScopeOf`.
#[derive(Clone, Copy, Debug, Default)]
#[non_exhaustive]
pub struct InScopeOf<'a> {
    /// `sourceArn`.
    pub source_arn: Option<&'a str>,
    /// `sourceAccount`.
    pub source_account: Option<&'a str>,
    /// `issuerType`.
    pub issuer_type: Option<&'a str>,
    /// `credentialsIssuedTo`.
    pub credentials_issued_to: Option<&'a str>,
}

/// One element of `resources`.
#[derive(Clone, Copy, Debug, Default)]
#[non_exhaustive]
pub struct Resource<'a> {
    /// `ARN`.
    pub arn: Option<&'a str>,
    /// `ARNPrefix`.
    pub arn_prefix: Option<&'a str>,
    /// `accountId`.
    pub account_id: Option<&'a str>,
    /// `type`, e.g. `AWS::S3::Object`.
    pub resource_type: Option<&'a str>,
}

impl<'a> Resource<'a> {
    fn from_doc(doc: &Doc<'a>, at: At) -> Self {
        let mut r = Resource::default();
        doc.members(at, |k, v| match k {
            "ARN" => r.arn = doc.str_at(v),
            "ARNPrefix" => r.arn_prefix = doc.str_at(v),
            "accountId" => r.account_id = doc.str_at(v),
            "type" => r.resource_type = doc.str_at(v),
            _ => {}
        });
        r
    }
}

/// `tlsDetails`.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct TlsDetails<'a> {
    /// `tlsVersion`.
    pub tls_version: Option<&'a str>,
    /// `cipherSuite`.
    pub cipher_suite: Option<&'a str>,
    /// `clientProvidedHostHeader`.
    pub client_provided_host_header: Option<&'a str>,
}

/// `addendum`.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct Addendum<'a> {
    /// `reason`.
    pub reason: Option<&'a str>,
    /// `updatedFields`.
    pub updated_fields: Option<&'a str>,
    /// `originalRequestID`.
    pub original_request_id: Option<&'a str>,
    /// `originalEventID`.
    pub original_event_id: Option<&'a str>,
}
