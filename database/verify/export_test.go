package verify

// SetChunkBlocks makes Readers.Hash read n blocks per query until the
// returned function restores it.
func SetChunkBlocks(n int64) (restore func()) {
	old := chunkBlocks
	chunkBlocks = n
	return func() { chunkBlocks = old }
}
