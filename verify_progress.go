package main

import (
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"
)

// verifyProgress is where the source side of a verify stands: the target
// hashes the same tables meanwhile, at about the same pace.
type verifyProgress struct {
	target     string
	tables     int
	size       int64 // of every table, bytes on disk
	start      time.Time
	mu         sync.Mutex
	tablesDone int
	doneBytes  int64  // of the tables done
	table      string // being hashed; "" once the source side is done
	tableDone  int64
	tableSize  int64
}

// verifyProgressNow is a verify's progress at one instant.
type verifyProgressNow struct {
	tablesDone, tables int
	table              string
	tableDone          int64
	tableSize          int64
	done, size         int64
	elapsed            time.Duration
}

func (p *verifyProgress) now() verifyProgressNow {
	p.mu.Lock()
	defer p.mu.Unlock()
	return verifyProgressNow{tablesDone: p.tablesDone, tables: p.tables, table: p.table, tableDone: p.tableDone,
		tableSize: p.tableSize, done: p.doneBytes + p.tableDone, size: max(p.size, p.doneBytes+p.tableSize), elapsed: time.Since(p.start)}
}

// begin says table, of size bytes, is being hashed.
func (p *verifyProgress) begin(table string, size int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.table, p.tableDone, p.tableSize = table, 0, size
}

// step is verify.Progress for the table being hashed.
func (p *verifyProgress) step(done, size int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tableDone, p.tableSize = done, size
}

// end says the table being hashed is done.
func (p *verifyProgress) end() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tablesDone++
	p.doneBytes += p.tableDone
	p.table, p.tableDone, p.tableSize = "", 0, 0
}

// rate is bytes per second over the run.
func (n verifyProgressNow) rate() float64 {
	if n.elapsed <= 0 {
		return 0
	}
	return float64(n.done) / n.elapsed.Seconds()
}

// left is the time left at the run's rate; ok is false when it cannot be
// told yet.
func (n verifyProgressNow) left() (time.Duration, bool) {
	r := n.rate()
	if r <= 0 {
		return 0, false
	}
	return time.Duration(float64(max(0, n.size-n.done)) / r * float64(time.Second)), true
}

func (n verifyProgressNow) line(target string) string {
	if n.tablesDone == n.tables {
		return fmt.Sprintf("verifying %s: the source's %d tables hashed, waiting for the target's", target, n.tables)
	}
	line := fmt.Sprintf("verifying %s: %d/%d tables, %.1f of %.1f MiB, %.1f MiB/s", target, n.tablesDone, n.tables,
		float64(n.done)/(1<<20), float64(n.size)/(1<<20), n.rate()/(1<<20))
	if n.table != "" && n.tableSize > 0 {
		line += fmt.Sprintf(", %s %d%%", n.table, n.tableDone*100/n.tableSize)
	}
	if left, ok := n.left(); ok {
		line += fmt.Sprintf(", %s left", left.Round(time.Second))
	}
	return line
}

// report logs the progress every logEvery and keeps a live line on live,
// when not nil, until stop is called.
func (p *verifyProgress) report(live io.Writer, log *slog.Logger, logEvery time.Duration) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		logTick := time.NewTicker(max(logEvery, 10*time.Millisecond))
		defer logTick.Stop()
		var redraw <-chan time.Time
		if live != nil {
			t := time.NewTicker(500 * time.Millisecond)
			defer t.Stop()
			redraw = t.C
		}
		for {
			select {
			case <-done:
				if live != nil {
					fmt.Fprint(live, "\r\033[K")
				}
				return
			case <-redraw:
				fmt.Fprint(live, "\r\033[K"+p.now().line(p.target))
			case <-logTick.C:
				n := p.now()
				attrs := []any{"tables_done", n.tablesDone, "tables", n.tables, "mib", round1(float64(n.done) / (1 << 20)),
					"of_mib", round1(float64(n.size) / (1 << 20)), "mib_per_second", round1(n.rate() / (1 << 20))}
				if n.table != "" {
					attrs = append(attrs, "table", n.table, "table_mib", round1(float64(n.tableDone)/(1<<20)), "table_of_mib", round1(float64(n.tableSize)/(1<<20)))
				}
				if left, ok := n.left(); ok && n.tablesDone < n.tables {
					attrs = append(attrs, "time_left", left.Round(time.Second))
				}
				log.Info("verify progress (source side)", attrs...)
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

func round1(f float64) float64 { return float64(int64(f*10+0.5)) / 10 }
