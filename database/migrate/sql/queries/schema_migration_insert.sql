INSERT INTO teleport.schema_migration (version, name) VALUES ($1, $2)
