package wire

import (
	"encoding/json"
	"fmt"
)

// DecodeChunk reads a chunk's JSON into c as json.Unmarshal would, each
// event's data kept as the bytes sent. The body is checked valid as a whole
// first (Valid); the events are then read by decodeEvents, several times
// faster than encoding/json on a chunk of thousands of small events.
func DecodeChunk(js []byte) (BatchChunk, error) {
	var c BatchChunk
	if !Valid(js) {
		return c, json.Unmarshal(js, &c) // its error says what and where
	}
	var err error
	c.Events, err = decodeEvents(js, func(name string, v []byte) error {
		var dst any
		switch name {
		case "source":
			dst = &c.Source
		case "instance":
			dst = &c.Instance
		case "target":
			dst = &c.Target
		case "seq":
			dst = &c.Seq
		case "chunk":
			dst = &c.Chunk
		case "last":
			dst = &c.Last
		case "tick_time":
			dst = &c.TickTime
		case "batch":
			dst = &c.Batch
		default:
			return nil // unknown members are ignored, as json.Unmarshal does
		}
		if err := json.Unmarshal(v, dst); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	})
	return c, err
}
