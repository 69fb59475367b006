package server

// SetBodyLimits sets the POST /batches body limits, compressed and
// decompressed, so tests need no huge bodies.
func SetBodyLimits(s *Server, compressed, decompressed int64) {
	s.maxBody, s.maxDecompressed = compressed, decompressed
}
