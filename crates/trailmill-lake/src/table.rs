//! The Iceberg table's shape: its schema, its partition spec, and the check
//! that an existing table can take trailmill's rows.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::TimestampMicrosecondType;
use arrow_array::{ArrayRef, RecordBatch, new_null_array};
use arrow_schema::{DataType, SchemaRef as ArrowSchemaRef};
use iceberg::spec::{PrimitiveType, Schema, Transform, Type, UnboundPartitionSpec};

/// The partition spec of a table trailmill creates: the day of
/// `event_time`, then the account and the region, the columns nearly every
/// CloudTrail query filters on. A query on a time range, an account or a
/// region reads only its partitions (Athena, Trino, Spark and DuckDB all
/// prune on Iceberg partition transforms without extra predicates).
pub const PARTITION_FIELDS: [(&str, &str, Transform); 3] = [
    ("event_time", "event_day", Transform::Day),
    (
        "recipient_account_id",
        "recipient_account_id",
        Transform::Identity,
    ),
    ("aws_region", "aws_region", Transform::Identity),
];

/// The Iceberg schema of the Parquet lake's columns
/// ([`trailmill_sinks::parquet::schema`]), numbered 1…N in column order.
pub fn schema() -> Result<Schema, String> {
    iceberg::arrow::arrow_schema_to_schema_auto_assign_ids(&trailmill_sinks::parquet::schema())
        .map_err(|e| format!("cannot map the lake's columns to Iceberg: {e}"))
}

/// [`schema`] with its times as `timestamp` (UTC, without a zone) instead
/// of `timestamptz`: the Glue catalog of iceberg 0.10 cannot create a table
/// with `timestamptz` columns (Athena's own Iceberg DDL makes `timestamp`
/// too). The values are the same UTC instants.
pub fn schema_without_zones() -> Result<Schema, String> {
    let fields: Vec<_> = schema()?
        .as_struct()
        .fields()
        .iter()
        .map(|f| {
            let mut f = (**f).clone();
            if *f.field_type == Type::Primitive(PrimitiveType::Timestamptz) {
                f.field_type = Box::new(Type::Primitive(PrimitiveType::Timestamp));
            }
            Arc::new(f)
        })
        .collect();
    Schema::builder()
        .with_fields(fields)
        .build()
        .map_err(|e| format!("cannot build the table's schema: {e}"))
}

/// True when a table column of type `table` can take the lake's `ours`:
/// the same type, or a UTC time stored without a zone.
fn takes(table: &Type, ours: &Type) -> bool {
    table == ours
        || (*table == Type::Primitive(PrimitiveType::Timestamp)
            && *ours == Type::Primitive(PrimitiveType::Timestamptz))
}

/// The partition spec of a new table, bound to `schema`'s field ids.
pub fn partition_spec(schema: &Schema) -> Result<UnboundPartitionSpec, String> {
    let mut b = UnboundPartitionSpec::builder();
    for (column, name, transform) in PARTITION_FIELDS {
        let id = schema
            .field_by_name(column)
            .ok_or_else(|| format!("no column {column}"))?
            .id;
        b = b
            .add_partition_field(id, name, transform)
            .map_err(|e| format!("cannot partition by {name}: {e}"))?;
    }
    Ok(b.build())
}

/// How to turn the lake's batches into a table's rows: for each column of
/// the table, the lake column that fills it, or none (an extra optional
/// column, left NULL).
#[derive(Clone, Debug)]
pub struct RowMapping {
    target: ArrowSchemaRef,
    sources: Vec<Option<usize>>,
}

impl RowMapping {
    /// Checks that the table (`table`, its current schema) can take the
    /// lake's rows: every lake column must exist with the same type, and
    /// any further column must be optional. The error lists every
    /// difference.
    pub fn new(table: &Schema) -> Result<RowMapping, String> {
        let ours = schema()?;
        let mut problems = Vec::new();
        for field in ours.as_struct().fields() {
            match table.field_by_name(&field.name) {
                None => problems.push(format!("column {} is missing", field.name)),
                Some(t) if !takes(&t.field_type, &field.field_type) => problems.push(format!(
                    "column {} is {}, not {}",
                    field.name, t.field_type, field.field_type
                )),
                Some(t) if t.required && !field.required => problems.push(format!(
                    "column {} is required, but trailmill writes NULLs to it",
                    field.name
                )),
                Some(_) => {}
            }
        }
        let lake = trailmill_sinks::parquet::schema();
        let mut sources = Vec::new();
        for field in table.as_struct().fields() {
            match lake.index_of(&field.name) {
                Ok(i) => sources.push(Some(i)),
                Err(_) if field.required => problems.push(format!(
                    "column {} is required, and trailmill has no value for it",
                    field.name
                )),
                Err(_) => sources.push(None),
            }
        }
        if !problems.is_empty() {
            return Err(format!(
                "the table's schema cannot take trailmill's rows: {}",
                problems.join("; ")
            ));
        }
        let target = iceberg::arrow::schema_to_arrow_schema(table)
            .map_err(|e| format!("cannot map the table's schema to Arrow: {e}"))?;
        Ok(RowMapping {
            target: Arc::new(target),
            sources,
        })
    }

    /// The table's Arrow schema (with its field ids).
    pub fn target(&self) -> &ArrowSchemaRef {
        &self.target
    }

    /// `batch` (in the lake's schema) as the table's rows.
    pub fn apply(&self, batch: &RecordBatch) -> Result<RecordBatch, String> {
        let columns: Vec<ArrayRef> = self
            .target
            .fields()
            .iter()
            .zip(&self.sources)
            .map(|(field, source)| match source {
                None => new_null_array(field.data_type(), batch.num_rows()),
                Some(i) => {
                    let column = batch.column(*i);
                    match field.data_type() {
                        // The same instants; only the zone differs ("UTC" in
                        // the lake, "+00:00" or none in the table).
                        DataType::Timestamp(_, tz) if column.data_type() != field.data_type() => {
                            Arc::new(
                                column
                                    .as_primitive::<TimestampMicrosecondType>()
                                    .clone()
                                    .with_timezone_opt(tz.clone()),
                            )
                        }
                        _ => column.clone(),
                    }
                }
            })
            .collect();
        RecordBatch::try_new(self.target.clone(), columns)
            .map_err(|e| format!("cannot shape a batch for the table: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iceberg::spec::NestedField;

    #[test]
    fn our_own_schema_is_compatible_and_keeps_the_time_zone() {
        let s = schema().unwrap();
        let m = RowMapping::new(&s).unwrap();
        assert_eq!(m.target().fields().len(), s.as_struct().fields().len());
        let spec = partition_spec(&s).unwrap();
        assert_eq!(spec.fields().len(), 3);
        // The Glue variant is taken too, and its batches have no zone.
        let g = schema_without_zones().unwrap();
        let m = RowMapping::new(&g).unwrap();
        let time = m.target().field_with_name("event_time").unwrap();
        assert_eq!(
            time.data_type(),
            &DataType::Timestamp(arrow_schema::TimeUnit::Microsecond, None)
        );
    }

    #[test]
    fn an_incompatible_table_is_refused_with_every_reason() {
        let fields = vec![
            NestedField::required(1, "event_id", Type::Primitive(PrimitiveType::String)).into(),
            NestedField::optional(2, "event_time", Type::Primitive(PrimitiveType::Long)).into(),
            NestedField::required(3, "owner", Type::Primitive(PrimitiveType::String)).into(),
        ];
        let s = Schema::builder().with_fields(fields).build().unwrap();
        let e = RowMapping::new(&s).unwrap_err();
        assert!(
            e.contains("column event_time is long, not timestamptz"),
            "{e}"
        );
        assert!(e.contains("column raw is missing"), "{e}");
        assert!(e.contains("column owner is required"), "{e}");
    }
}
