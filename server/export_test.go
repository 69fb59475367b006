package server

import "context"

// SetBodyLimits sets the POST /batches body limits, compressed and
// decompressed, so tests need no huge bodies.
func SetBodyLimits(s *Server, compressed, decompressed int64) {
	s.maxBody, s.maxDecompressed = compressed, decompressed
}

// LoadJustFinished is loadJustFinished, for tests.
func LoadJustFinished(s *Server, ctx context.Context, source, held string) bool {
	return s.loadJustFinished(ctx, source, held)
}
