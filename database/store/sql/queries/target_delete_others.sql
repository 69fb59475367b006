DELETE FROM teleport.target WHERE name <> ALL ($1::text[]) RETURNING name
