package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// repeatEvery is how often one warning or error that repeats every pass (a
// database down, a target unreachable) is written: once when it starts, then
// once per period with the count of the lines left out.
const repeatEvery = time.Minute

// repeatHandler writes a warning or error that repeats, same message and
// same attributes, once per period, adding "repeats" with how many it left
// out. Lower levels pass through. Workers still log their own recovery.
type repeatHandler struct {
	slog.Handler
	scope string // the attributes and groups added by With, rendered
	state *repeatState
}

type repeatState struct {
	mu    sync.Mutex
	every time.Duration
	now   func() time.Time
	seen  map[string]*repeatSeen
}

type repeatSeen struct {
	at      time.Time
	dropped int
}

func newRepeatHandler(h slog.Handler, every time.Duration, now func() time.Time) repeatHandler {
	return repeatHandler{Handler: h, state: &repeatState{every: every, now: now, seen: map[string]*repeatSeen{}}}
}

func (h repeatHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn {
		return h.Handler.Handle(ctx, r)
	}
	var key strings.Builder
	key.WriteString(h.scope)
	key.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&key, "|%s=%v", a.Key, a.Value)
		return true
	})
	st := h.state
	st.mu.Lock()
	now := st.now()
	s := st.seen[key.String()]
	if s != nil && now.Sub(s.at) < st.every {
		s.dropped++
		st.mu.Unlock()
		return nil
	}
	dropped := 0
	if s != nil {
		dropped = s.dropped
	}
	if len(st.seen) > 1000 { // forget what has not repeated lately, so distinct errors do not pile up
		for k, v := range st.seen {
			if now.Sub(v.at) >= st.every {
				delete(st.seen, k)
			}
		}
	}
	st.seen[key.String()] = &repeatSeen{at: now}
	st.mu.Unlock()
	if dropped > 0 {
		r = r.Clone()
		r.AddAttrs(slog.Int("repeats", dropped))
	}
	return h.Handler.Handle(ctx, r)
}

func (h repeatHandler) WithAttrs(as []slog.Attr) slog.Handler {
	var b strings.Builder
	b.WriteString(h.scope)
	for _, a := range as {
		fmt.Fprintf(&b, "%s=%v|", a.Key, a.Value)
	}
	return repeatHandler{Handler: h.Handler.WithAttrs(as), scope: b.String(), state: h.state}
}

func (h repeatHandler) WithGroup(name string) slog.Handler {
	return repeatHandler{Handler: h.Handler.WithGroup(name), scope: h.scope + name + ".", state: h.state}
}
