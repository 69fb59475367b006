package applier

// SetMaxEvents sets the cap on the events one transaction applies, so tests
// can make batches share or not share transactions.
func SetMaxEvents(w *Worker, n int) { w.maxEvents = n }
