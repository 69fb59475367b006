SELECT coalesce(max(version), 0) FROM teleport.schema_migration
