package verify

import (
	"embed"

	"github.com/pagarme/teleport/database"
)

//go:embed sql
var sqlFiles embed.FS

// query returns the text of one of this package's queries, sql/queries/NAME.sql.
var query = database.QueryFiles(sqlFiles, "sql/queries")
