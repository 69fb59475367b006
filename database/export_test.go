package database

// Queries exposes the embedded queries to TestQueriesPrepare.
func Queries() map[string]string { return queries }
