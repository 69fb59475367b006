package wire

import "encoding/json"

// Op is the kind of a captured change, as stored in teleport.event.op, or
// a schema change.
type Op string

// The operations capture records.
const (
	OpInsert   Op = "I" // Data: JSON array of new rows
	OpUpdate   Op = "U" // Data: JSON array of [old row, new row] pairs
	OpDelete   Op = "D" // Data: JSON array of old rows
	OpTruncate Op = "T" // Data: null
	OpSchema   Op = "S" // Data: a schema change (DDL), as JSON
)

// Event is one captured chunk of a statement on one table: up to 1000 rows
// of it. Data is the JSON PostgreSQL produced (row_to_json), carried
// verbatim from source to target and never re-encoded, so json columns keep
// their exact text.
type Event struct {
	ID     int64           `json:"id"`
	XID    uint64          `json:"xid,omitempty"` // the writing transaction, for an initial load's hand-off
	Schema string          `json:"schema"`
	Table  string          `json:"table"`
	Op     Op              `json:"op"`
	Rows   int             `json:"rows"`
	Data   json.RawMessage `json:"data,omitempty"`
}
