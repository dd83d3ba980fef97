//! Iceberg catalogs from a URI, and the pinned view the commit protocol needs.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_config::{BehaviorVersion, Region};
use iceberg::table::Table;
use iceberg::{
    Catalog, CatalogBuilder, Namespace, NamespaceIdent, Result, TableCommit, TableCreation,
    TableIdent,
};
use iceberg_catalog_glue::GlueCatalogBuilder;
use iceberg_catalog_rest::RestCatalogBuilder;
use iceberg_catalog_s3tables::S3TablesCatalogBuilder;
use iceberg_catalog_sql::{SqlBindStyle, SqlCatalogBuilder};
use iceberg_storage_opendal::OpenDalResolvingStorageFactory;
use trailmill_aws::retry::describe;

/// The catalog name trailmill registers its tables under in an SQL catalog
/// (the `catalog_name` column of `iceberg_tables`); readers such as
/// pyiceberg's `SqlCatalog` must use the same name.
pub const SQL_CATALOG_NAME: &str = "trailmill";

/// Which catalog a `--iceberg-catalog` value names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CatalogKind {
    /// `sqlite:PATH`: the SQL catalog in a SQLite file (created if missing).
    Sqlite(String),
    /// `postgres://…`: the SQL catalog in PostgreSQL.
    Postgres(String),
    /// `glue`: the AWS Glue Data Catalog of the configured account and region.
    Glue,
    /// `arn:aws:s3tables:REGION:ACCOUNT:bucket/NAME`: an Amazon S3 Tables
    /// table bucket, through the S3 Tables API. The service chooses each
    /// table's location.
    S3Tables {
        /// The table bucket's ARN, as given.
        arn: String,
        /// The region the ARN names, where the bucket and its tables are.
        region: String,
    },
    /// `http://…` or `https://…`: an Iceberg REST catalog server (Apache
    /// Polaris, Lakekeeper, Unity Catalog, Nessie, …), at that base URI
    /// (the one before `/v1/`). AWS's REST endpoints need SigV4 signing,
    /// which the crate's REST client does not do.
    Rest(String),
}

/// What `--iceberg-warehouse` means to a catalog.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WarehouseRole {
    /// Where new tables go (`s3://bucket/prefix` or a directory); required.
    Location,
    /// Nothing: the catalog places each table itself, so a warehouse is
    /// refused (S3 Tables).
    Refused,
    /// Which of the server's warehouses to use, by the name or location the
    /// server knows it by; optional, as a server may have a default (REST).
    ServerWarehouse,
}

impl CatalogKind {
    /// Parses a `--iceberg-catalog` value.
    pub fn parse(uri: &str) -> std::result::Result<CatalogKind, String> {
        if let Some(path) = uri.strip_prefix("sqlite:") {
            let path = path.trim_start_matches("//");
            if path.is_empty() {
                return Err(format!("{uri:?} names no SQLite file"));
            }
            return Ok(CatalogKind::Sqlite(path.to_owned()));
        }
        if uri.starts_with("postgres://") || uri.starts_with("postgresql://") {
            return Ok(CatalogKind::Postgres(uri.to_owned()));
        }
        if uri == "glue" {
            return Ok(CatalogKind::Glue);
        }
        if uri.starts_with("arn:") {
            return parse_table_bucket_arn(uri);
        }
        if let Some(rest) = uri
            .strip_prefix("http://")
            .or_else(|| uri.strip_prefix("https://"))
        {
            if rest.trim_end_matches('/').is_empty() {
                return Err(format!("{uri:?} names no REST catalog server"));
            }
            return Ok(CatalogKind::Rest(uri.trim_end_matches('/').to_owned()));
        }
        Err(format!(
            "{uri:?} is not a catalog; expected sqlite:PATH, postgres://…, glue, \
             arn:aws:s3tables:REGION:ACCOUNT:bucket/NAME or a REST catalog's http(s):// URI"
        ))
    }

    /// What `--iceberg-warehouse` means to this catalog.
    pub fn warehouse_role(&self) -> WarehouseRole {
        match self {
            CatalogKind::S3Tables { .. } => WarehouseRole::Refused,
            CatalogKind::Rest(_) => WarehouseRole::ServerWarehouse,
            _ => WarehouseRole::Location,
        }
    }

    /// How long to wait for a table that the catalog lists but cannot load
    /// yet. S3 Tables lists a table from `CreateTable` on, before its
    /// creator has written the first metadata; the other catalogs list a
    /// table only with its metadata, so they wait for nothing.
    pub fn creation_wait(&self) -> Duration {
        match self {
            CatalogKind::S3Tables { .. } => Duration::from_secs(10),
            _ => Duration::ZERO,
        }
    }

    /// True when files under the table's location can be deleted. S3 Tables
    /// refuses `DeleteObject` on its table buckets (its unreferenced-file
    /// removal deletes what no snapshot holds), so there files that no
    /// commit uses are left to it.
    pub fn can_delete_files(&self) -> bool {
        !matches!(self, CatalogKind::S3Tables { .. })
    }

    /// Checks `namespace` and `table` against the catalog's naming rules
    /// before anything is created. S3 Tables takes one namespace level, and
    /// names of lowercase letters, digits and underscores that begin and end
    /// with a letter or digit (a namespace may not begin with `aws`); the
    /// other catalogs take what Iceberg takes.
    pub fn check_names(&self, namespace: &str, table: &str) -> std::result::Result<(), String> {
        if !matches!(self, CatalogKind::S3Tables { .. }) {
            return Ok(());
        }
        if namespace.contains('.') {
            return Err(format!(
                "S3 Tables namespaces have one level, not {namespace:?}: name the table NAMESPACE.TABLE"
            ));
        }
        let fits = |name: &str| {
            let edge =
                |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
            (1..=255).contains(&name.len())
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                && edge(name.chars().next())
                && edge(name.chars().last())
        };
        const RULE: &str = "lowercase letters, digits and underscores, beginning and ending with a letter or digit";
        if !fits(namespace) || namespace.starts_with("aws") {
            return Err(format!(
                "{namespace:?} is not an S3 Tables namespace name: {RULE}, not beginning with \"aws\""
            ));
        }
        if !fits(table) {
            return Err(format!("{table:?} is not an S3 Tables table name: {RULE}"));
        }
        Ok(())
    }

    /// Properties the catalog itself implies: an S3 Tables bucket's region
    /// for its API and its storage. The AWS environment's come before them,
    /// and `--iceberg-property` values after.
    pub fn implied_properties(&self) -> HashMap<String, String> {
        match self {
            CatalogKind::S3Tables { region, .. } => HashMap::from([
                ("region_name".to_owned(), region.clone()),
                ("s3.region".to_owned(), region.clone()),
            ]),
            _ => HashMap::new(),
        }
    }
}

/// An S3 Tables bucket ARN: `arn:PARTITION:s3tables:REGION:ACCOUNT:bucket/NAME`.
fn parse_table_bucket_arn(uri: &str) -> std::result::Result<CatalogKind, String> {
    let parts: Vec<&str> = uri.splitn(6, ':').collect();
    let bucket = parts.get(5).and_then(|r| r.strip_prefix("bucket/"));
    match (parts.get(2), parts.get(3), parts.get(4), bucket) {
        (Some(&"s3tables"), Some(region), Some(account), Some(name))
            if !region.is_empty()
                && !account.is_empty()
                && !name.is_empty()
                && !name.contains('/') =>
        {
            Ok(CatalogKind::S3Tables {
                arn: uri.to_owned(),
                region: (*region).to_owned(),
            })
        }
        _ => Err(format!(
            "{uri:?} is not the ARN of an S3 Tables table bucket \
             (arn:aws:s3tables:REGION:ACCOUNT:bucket/NAME)"
        )),
    }
}

/// Properties for S3 storage taken from the standard AWS environment, so that
/// the table's files go where trailmill's own S3 client goes: the endpoint
/// (`AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`, with path-style addressing as
/// trailmill uses for any custom endpoint), the region and static keys.
/// Properties the user gives win.
pub fn environment_properties() -> HashMap<String, String> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let mut props = HashMap::new();
    if let Some(endpoint) = env("AWS_ENDPOINT_URL_S3").or_else(|| env("AWS_ENDPOINT_URL")) {
        props.insert("s3.endpoint".into(), endpoint);
        props.insert("s3.path-style-access".into(), "true".into());
    }
    if let Some(region) = env("AWS_REGION").or_else(|| env("AWS_DEFAULT_REGION")) {
        props.insert("s3.region".into(), region.clone());
        props.insert("region_name".into(), region);
    }
    if let (Some(id), Some(secret)) = (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
        props.insert("s3.access-key-id".into(), id);
        props.insert("s3.secret-access-key".into(), secret);
        if let Some(token) = env("AWS_SESSION_TOKEN") {
            props.insert("s3.session-token".into(), token);
        }
    }
    props
}

/// Opens the catalog. `warehouse` is what [`CatalogKind::warehouse_role`]
/// says: where new tables go, nothing, or the server's warehouse; `props` go
/// to the catalog and its storage. Must run inside a tokio runtime.
pub async fn open(
    kind: &CatalogKind,
    warehouse: &str,
    props: HashMap<String, String>,
) -> std::result::Result<Arc<dyn Catalog>, String> {
    let factory = Arc::new(OpenDalResolvingStorageFactory::new());
    match kind {
        CatalogKind::Sqlite(path) | CatalogKind::Postgres(path) => {
            let (uri, style) = match kind {
                CatalogKind::Sqlite(_) => (format!("sqlite:{path}?mode=rwc"), SqlBindStyle::QMark),
                _ => (path.clone(), SqlBindStyle::DollarNumeric),
            };
            sqlx::any::install_default_drivers();
            let catalog = SqlCatalogBuilder::default()
                .uri(uri)
                .warehouse_location(warehouse)
                .sql_bind_style(style)
                .with_storage_factory(factory)
                .load(SQL_CATALOG_NAME, props)
                .await
                .map_err(|e| format!("cannot open the SQL catalog: {}", message(&e)))?;
            Ok(Arc::new(catalog))
        }
        CatalogKind::Glue => {
            let mut props = props;
            props.insert("warehouse".into(), warehouse.to_owned());
            if !props.contains_key("uri")
                && let Some(endpoint) = std::env::var("AWS_ENDPOINT_URL_GLUE")
                    .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
                    .ok()
                    .filter(|v| !v.is_empty())
            {
                props.insert("uri".into(), endpoint);
            }
            let catalog = GlueCatalogBuilder::default()
                .with_storage_factory(factory)
                .load("glue", props)
                .await
                .map_err(|e| format!("cannot open the Glue catalog: {}", message(&e)))?;
            Ok(Arc::new(catalog))
        }
        CatalogKind::S3Tables { arn, region } => {
            // trailmill's own client, from the AWS environment as for its
            // S3, SQS and SNS clients (`AWS_ENDPOINT_URL_S3TABLES` or
            // `AWS_ENDPOINT_URL`, the credential chain), so that a bucket
            // that does not exist or cannot be reached is reported as one
            // line before anything is written. The properties the crate's
            // own client would take still apply.
            let region = props.get("region_name").unwrap_or(region).clone();
            let mut config =
                aws_config::defaults(BehaviorVersion::latest()).region(Region::new(region));
            if let Some(endpoint) = props.get("endpoint_url") {
                config = config.endpoint_url(endpoint);
            }
            if let Some(profile) = props.get("profile_name") {
                config = config.profile_name(profile);
            }
            if let (Some(id), Some(secret)) = (
                props.get("aws_access_key_id"),
                props.get("aws_secret_access_key"),
            ) {
                let token = props.get("aws_session_token").cloned();
                config = config.credentials_provider(aws_sdk_s3tables::config::Credentials::new(
                    id,
                    secret,
                    token,
                    None,
                    "--iceberg-property",
                ));
            }
            let client = aws_sdk_s3tables::Client::new(&config.load().await);
            client
                .get_table_bucket()
                .table_bucket_arn(arn)
                .send()
                .await
                .map_err(|e| format!("cannot open the S3 Tables bucket {arn}: {}", describe(e)))?;
            let catalog = S3TablesCatalogBuilder::default()
                .with_client(client)
                .with_table_bucket_arn(arn.clone())
                .with_storage_factory(factory)
                .load("s3tables", props)
                .await
                .map_err(|e| format!("cannot open the S3 Tables catalog: {}", message(&e)))?;
            Ok(Arc::new(catalog))
        }
        CatalogKind::Rest(uri) => {
            let mut props = props;
            props.insert("uri".into(), uri.clone());
            if !warehouse.is_empty() {
                props.insert("warehouse".into(), warehouse.to_owned());
            }
            // The crate's own client has no TLS; this one has trailmill's
            // rustls configuration (the system's roots, `SSL_CERT_FILE`).
            let tls = trailmill_sinks::tls::client_config(None)
                .map_err(|e| format!("cannot set up TLS for {uri}: {e}"))?;
            // Without timeouts, a server that stops answering would hold a
            // checkpoint's commit (and the SQS messages behind it) forever;
            // a timed-out commit is settled like any unknown outcome.
            let client = reqwest::Client::builder()
                .use_preconfigured_tls(tls)
                .connect_timeout(Duration::from_secs(10))
                .timeout(Duration::from_secs(120))
                .build()
                .map_err(|e| format!("cannot set up an HTTP client for {uri}: {e}"))?;
            // The name is the client's own label; the server never sees it.
            let catalog = RestCatalogBuilder::default()
                .with_client(client)
                .with_storage_factory(factory)
                .load("rest", props)
                .await
                .map_err(|e| format!("cannot open the REST catalog {uri}: {}", message(&e)))?;
            Ok(Arc::new(catalog))
        }
    }
}

/// An Iceberg error as one line, with its causes.
pub fn message(e: &iceberg::Error) -> String {
    let mut text = e.to_string().replace('\n', " ");
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more.replace('\n', " "));
        }
        source = s.source();
    }
    without_rest_dump(&without_sdk_dump(&without_http_response(&text)))
}

/// `text` with a REST catalog's error response (`Unexpected, context: {
/// status: 403 Forbidden, headers: {…}, json: {"error": {"message": …,
/// "type": …, "code": …}} } => Received response with unexpected status
/// code`, as the REST catalog prints it) cut to `TYPE: MESSAGE (HTTP
/// STATUS)`: the server's own words, without a dozen response headers.
fn without_rest_dump(text: &str) -> String {
    const START: &str = "Unexpected, context: { status: ";
    const END: &str = " } => Received response with unexpected status code";
    let Some(at) = text.find(START) else {
        return text.to_owned();
    };
    let dump = &text[at + START.len()..];
    let status: String = dump.chars().take_while(char::is_ascii_digit).collect();
    if status.is_empty() {
        return text.to_owned();
    }
    // The body, if any, is the last item of the context.
    let (said, rest) = match dump.find(", json: ") {
        Some(j) => {
            let body = &dump[j + ", json: ".len()..];
            let mut values =
                serde_json::Deserializer::from_str(body).into_iter::<serde_json::Value>();
            match values.next() {
                Some(Ok(v)) => {
                    let error = &v["error"];
                    let field = |k: &str| error[k].as_str().filter(|s| !s.is_empty());
                    let said = match (field("type"), field("message")) {
                        (Some(t), Some(m)) => format!("{t}: {m}"),
                        (None, Some(m)) => m.to_owned(),
                        _ => v.to_string(),
                    };
                    (said, &body[values.byte_offset()..])
                }
                // Not JSON: the body as it is, up to the end of the dump.
                _ => {
                    let end = body.find(END).unwrap_or(body.len());
                    (body[..end].trim().to_owned(), &body[end..])
                }
            }
        }
        None => (
            "the server gave no reason".to_owned(),
            dump.find(END).map_or("", |e| &dump[e..]),
        ),
    };
    let rest = rest.strip_prefix(END).unwrap_or(rest);
    format!("{}{said} (HTTP {status}){rest}", &text[..at])
}

/// `text` with an AWS SDK service error's debug dump (`ServiceError(
/// ServiceError { source: …, meta: ErrorMetadata { code: Some("…"), message:
/// Some("…"), … }, raw: Response { status: StatusCode(404), … } … })`, as
/// the Glue and S3 Tables catalogs print it) cut to `CODE: MESSAGE (HTTP
/// STATUS)`, as trailmill prints its own SDK errors.
fn without_sdk_dump(text: &str) -> String {
    const START: &str = "ServiceError(ServiceError { ";
    let Some(at) = text.find(START) else {
        return text.to_owned();
    };
    let dump = &text[at..];
    let quoted = |after: &str| {
        let from = dump.find(after)? + after.len();
        let rest = &dump[from..];
        Some(&rest[..rest.find("\")")?])
    };
    let status = dump.find("status: StatusCode(").map(|i| {
        dump[i + "status: StatusCode(".len()..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
    });
    let Some(code) = quoted("code: Some(\"") else {
        return text.to_owned();
    };
    let mut out = format!("{}{code}", &text[..at]);
    if let Some(message) = quoted("message: Some(\"") {
        out.push_str(": ");
        out.push_str(message);
    }
    if let Some(status) = status.filter(|s| !s.is_empty()) {
        out.push_str(&format!(" (HTTP {status})"));
    }
    out
}

/// `text` without the HTTP response dumps storage errors carry
/// (`response: Parts { status: 403, version: …, headers: {…} }, `): a
/// dozen headers that bury the object's path and S3's own error code,
/// which the message keeps, with the status.
fn without_http_response(text: &str) -> String {
    const START: &str = "response: Parts { status: ";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(START) {
        out.push_str(&rest[..at]);
        let dump = &rest[at..];
        // The dump ends at the brace that closes `Parts {`.
        let mut depth = 0usize;
        let mut end = None;
        for (i, c) in dump.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = Some(i + 1);
                        break;
                    }
                }
                _ => {}
            }
        }
        let Some(end) = end else {
            // Cut off: keep the rest as it is.
            out.push_str(dump);
            return out;
        };
        let status: String = dump[START.len()..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        out.push_str("status: ");
        out.push_str(&status);
        rest = &dump[end..];
    }
    out.push_str(rest);
    out
}

/// A catalog that answers `load_table` with one fixed version of one table.
///
/// `Transaction::commit` reloads the table before it commits and silently
/// rebases onto whatever it finds. The ledger check must hold for the very
/// version that gets replaced, so the sink commits through this view: the
/// transaction then sees the version the check examined, and the catalog's
/// own compare-and-swap (the append requires the branch head it was built
/// on) refuses the commit if anyone committed since. Conflicts are returned
/// as not retryable, because retrying against the same pinned version cannot
/// succeed; the sink reloads and checks again instead.
#[derive(Debug)]
pub struct Pinned {
    /// The real catalog.
    pub inner: Arc<dyn Catalog>,
    /// The version the commit is built on.
    pub table: Table,
}

#[async_trait]
impl Catalog for Pinned {
    async fn list_namespaces(
        &self,
        parent: Option<&NamespaceIdent>,
    ) -> Result<Vec<NamespaceIdent>> {
        self.inner.list_namespaces(parent).await
    }

    async fn create_namespace(
        &self,
        namespace: &NamespaceIdent,
        properties: HashMap<String, String>,
    ) -> Result<Namespace> {
        self.inner.create_namespace(namespace, properties).await
    }

    async fn get_namespace(&self, namespace: &NamespaceIdent) -> Result<Namespace> {
        self.inner.get_namespace(namespace).await
    }

    async fn namespace_exists(&self, namespace: &NamespaceIdent) -> Result<bool> {
        self.inner.namespace_exists(namespace).await
    }

    async fn update_namespace(
        &self,
        namespace: &NamespaceIdent,
        properties: HashMap<String, String>,
    ) -> Result<()> {
        self.inner.update_namespace(namespace, properties).await
    }

    async fn drop_namespace(&self, namespace: &NamespaceIdent) -> Result<()> {
        self.inner.drop_namespace(namespace).await
    }

    async fn list_tables(&self, namespace: &NamespaceIdent) -> Result<Vec<TableIdent>> {
        self.inner.list_tables(namespace).await
    }

    async fn create_table(
        &self,
        namespace: &NamespaceIdent,
        creation: TableCreation,
    ) -> Result<Table> {
        self.inner.create_table(namespace, creation).await
    }

    async fn load_table(&self, table: &TableIdent) -> Result<Table> {
        if table == self.table.identifier() {
            return Ok(self.table.clone());
        }
        self.inner.load_table(table).await
    }

    async fn drop_table(&self, table: &TableIdent) -> Result<()> {
        self.inner.drop_table(table).await
    }

    async fn purge_table(&self, table: &TableIdent) -> Result<()> {
        self.inner.purge_table(table).await
    }

    async fn table_exists(&self, table: &TableIdent) -> Result<bool> {
        self.inner.table_exists(table).await
    }

    async fn rename_table(&self, src: &TableIdent, dest: &TableIdent) -> Result<()> {
        self.inner.rename_table(src, dest).await
    }

    async fn register_table(&self, table: &TableIdent, metadata_location: String) -> Result<Table> {
        self.inner.register_table(table, metadata_location).await
    }

    async fn update_table(&self, commit: TableCommit) -> Result<Table> {
        self.inner
            .update_table(commit)
            .await
            .map_err(|e| e.with_retryable(false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: a denied data-file write printed the response's dozen
    /// headers between the object's path and S3's error code.
    #[test]
    fn storage_errors_keep_the_path_status_and_code_but_not_the_headers() {
        let text = "Failure in doing io operation, source: PermissionDenied (persistent) at write, \
            context: { uri: http://127.0.0.1:5078/lake/wh/data/x.parquet, response: Parts { \
            status: 403, version: HTTP/1.1, headers: {\"server\": \"amazon.com\", \
            \"content-length\": \"279\"} }, service: s3, path: wh/data/x.parquet, written: 663371 } \
            => S3Error { code: \"AccessDenied\", message: \"Access Denied\" }";
        assert_eq!(
            without_http_response(text),
            "Failure in doing io operation, source: PermissionDenied (persistent) at write, \
             context: { uri: http://127.0.0.1:5078/lake/wh/data/x.parquet, status: 403, \
             service: s3, path: wh/data/x.parquet, written: 663371 } \
             => S3Error { code: \"AccessDenied\", message: \"Access Denied\" }"
        );
        assert_eq!(without_http_response("no dump here"), "no dump here");
        assert_eq!(
            without_http_response("response: Parts { status: 500, cut"),
            "response: Parts { status: 500, cut"
        );
    }

    /// Regression: the Glue and S3 Tables catalogs' errors printed the SDK
    /// error's whole debug dump (its response headers and body included).
    #[test]
    fn sdk_service_errors_become_their_code_message_and_status() {
        let text = "cannot create the table: Unexpected => Operation failed for hitting aws sdk \
            error: ServiceError(ServiceError { source: NotFoundException(NotFoundException { \
            message: Some(\"The specified namespace does not exist.\"), meta: ErrorMetadata { \
            code: Some(\"NotFoundException\"), message: Some(\"The specified namespace does not \
            exist.\"), extras: Some({\"aws_request_id\": \"Wt\"}) } }), raw: Response { status: \
            StatusCode(404), headers: {\"server\": \"amazon.com\"}, body: SdkBody { inner: \
            Once(Some(b\"{}\")), retryable: true } } })";
        assert_eq!(
            without_sdk_dump(text),
            "cannot create the table: Unexpected => Operation failed for hitting aws sdk error: \
             NotFoundException: The specified namespace does not exist. (HTTP 404)"
        );
        assert_eq!(without_sdk_dump("no dump"), "no dump");
        // Without a code there is nothing better to say: the text stays.
        let odd = "x ServiceError(ServiceError { source: Unhandled }";
        assert_eq!(without_sdk_dump(odd), odd);
    }

    /// Regression: a REST catalog's refusals printed every response header
    /// around the server's own message.
    #[test]
    fn rest_error_responses_become_their_type_message_and_status() {
        let text = "cannot create the namespace: Unexpected, context: { status: 403 Forbidden, \
            headers: {\"x-frame-options\": \"DENY\", \"content-type\": \"application/json\"}, \
            json: {\"error\":{\"message\":\"No policy permits 'create' on 'default/security'\",\
            \"type\":\"ForbiddenException\",\"code\":403}} } => Received response with \
            unexpected status code";
        assert_eq!(
            without_rest_dump(text),
            "cannot create the namespace: ForbiddenException: No policy permits 'create' on \
             'default/security' (HTTP 403)"
        );
        // A body that is not the REST error model is kept as it is.
        let plain = "x: Unexpected, context: { status: 502 Bad Gateway, headers: {}, json: \
            <html>bad gateway</html> } => Received response with unexpected status code, \
            source: y";
        assert_eq!(
            without_rest_dump(plain),
            "x: <html>bad gateway</html> (HTTP 502), source: y"
        );
        let empty = "Unexpected, context: { status: 401 Unauthorized, headers: {} } => Received \
            response with unexpected status code";
        assert_eq!(
            without_rest_dump(empty),
            "the server gave no reason (HTTP 401)"
        );
        assert_eq!(without_rest_dump("no dump"), "no dump");
    }

    #[test]
    fn rest_catalog_uris_are_http_or_https() {
        assert_eq!(
            CatalogKind::parse("https://catalog.example.com/api/catalog/").unwrap(),
            CatalogKind::Rest("https://catalog.example.com/api/catalog".into())
        );
        assert_eq!(
            CatalogKind::parse("http://127.0.0.1:8181")
                .unwrap()
                .warehouse_role(),
            WarehouseRole::ServerWarehouse
        );
        assert!(
            CatalogKind::parse("https://")
                .unwrap_err()
                .contains("names no REST catalog")
        );
    }

    #[test]
    fn s3_tables_names_are_checked_before_anything_is_created() {
        let kind = CatalogKind::parse("arn:aws:s3tables:eu-west-1:1:bucket/b").unwrap();
        assert_eq!(kind.check_names("security", "cloud_trail_2"), Ok(()));
        for (ns, table, says) in [
            ("a.b", "t", "one level"),
            ("Security", "t", "not an S3 Tables namespace name"),
            ("sec-logs", "t", "not an S3 Tables namespace name"),
            ("_sec", "t", "not an S3 Tables namespace name"),
            ("aws_logs", "t", "not beginning with \"aws\""),
            ("security", "Events", "not an S3 Tables table name"),
            ("security", "events_", "not an S3 Tables table name"),
        ] {
            let e = kind.check_names(ns, table).unwrap_err();
            assert!(e.contains(says), "{ns}.{table}: {e}");
        }
        // The other catalogs take what Iceberg takes.
        assert_eq!(CatalogKind::Glue.check_names("a.b", "Events-1"), Ok(()));
    }

    #[test]
    fn parses_catalog_uris() {
        assert_eq!(
            CatalogKind::parse("sqlite:cat.db"),
            Ok(CatalogKind::Sqlite("cat.db".into()))
        );
        assert_eq!(
            CatalogKind::parse("sqlite:///abs/cat.db"),
            Ok(CatalogKind::Sqlite("/abs/cat.db".into()))
        );
        assert_eq!(CatalogKind::parse("glue"), Ok(CatalogKind::Glue));
        assert!(matches!(
            CatalogKind::parse("postgresql://u@127.0.0.1/db"),
            Ok(CatalogKind::Postgres(_))
        ));
        assert_eq!(
            CatalogKind::parse("https://x"),
            Ok(CatalogKind::Rest("https://x".into()))
        );
        assert_eq!(
            CatalogKind::parse("arn:aws:s3tables:eu-west-1:111122223333:bucket/trails"),
            Ok(CatalogKind::S3Tables {
                arn: "arn:aws:s3tables:eu-west-1:111122223333:bucket/trails".into(),
                region: "eu-west-1".into()
            })
        );
        for not_a_table_bucket in [
            "arn:aws:s3:::trails",
            "arn:aws:s3tables:eu-west-1:111122223333:table/x",
            "arn:aws:s3tables::111122223333:bucket/trails",
            "arn:aws:s3tables:eu-west-1:111122223333:bucket/",
            "arn:aws:s3tables:eu-west-1",
        ] {
            let e = CatalogKind::parse(not_a_table_bucket).unwrap_err();
            assert!(
                e.contains("not the ARN of an S3 Tables table bucket"),
                "{e}"
            );
        }
        assert!(CatalogKind::parse("hive").is_err());
        assert!(CatalogKind::parse("sqlite:").is_err());
    }
}
