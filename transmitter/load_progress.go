package transmitter

import (
	"fmt"
	"io"
	"time"
)

// redrawEvery is how often the live progress line is redrawn.
const redrawEvery = 500 * time.Millisecond

// progress is a load's totals at one instant.
type progress struct {
	tablesDone, tables int
	rows, estRows      int64
	bytes              int64
	elapsed            time.Duration
}

// rowRate is rows per second over the run.
func (p progress) rowRate() float64 {
	if p.elapsed <= 0 {
		return 0
	}
	return float64(p.rows) / p.elapsed.Seconds()
}

// left is the time left at the run's rate, from the estimate of the rows
// left; ok is false when it cannot be told yet.
func (p progress) left() (time.Duration, bool) {
	rate := p.rowRate()
	if rate <= 0 || p.estRows <= 0 {
		return 0, false
	}
	return time.Duration(float64(max(0, p.estRows-p.rows)) / rate * float64(time.Second)), true
}

func (l *loader) progress(tables []*loadTable, start time.Time) progress {
	p := progress{tables: len(tables), elapsed: time.Since(start)}
	for _, lt := range tables {
		rows := lt.rows.Load()
		p.rows += rows
		p.bytes += lt.bytes.Load()
		if lt.done.Load() {
			p.tablesDone++
			p.estRows += rows
		} else {
			p.estRows += max(lt.src.EstRows, rows)
		}
	}
	return p
}

// reportProgress logs the load's progress every opts.LogEvery, with a line
// per table being copied, and keeps the live line on opts.Progress. The
// returned function stops it and logs the totals.
func (l *loader) reportProgress(tables []*loadTable) (stop func()) {
	start := time.Now()
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		logTick := time.NewTicker(max(l.opts.LogEvery, time.Second))
		defer logTick.Stop()
		var redraw <-chan time.Time
		if l.opts.Progress != nil {
			t := time.NewTicker(redrawEvery)
			defer t.Stop()
			redraw = t.C
		}
		for {
			select {
			case <-done:
				if l.opts.Progress != nil {
					fmt.Fprint(l.opts.Progress, "\r\033[K")
				}
				p := l.progress(tables, start)
				l.log.Info(l.what+" copied", "tables", p.tablesDone, "of", p.tables, "rows", p.rows,
					"bytes", p.bytes, "mib_per_second", round1(mibPerSecond(p.bytes, p.elapsed)), "took", p.elapsed.Round(time.Millisecond))
				return
			case <-redraw:
				drawLine(l.opts.Progress, l.opts.Target, l.progress(tables, start))
			case <-logTick.C:
				l.logProgress(tables, start)
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

func (l *loader) logProgress(tables []*loadTable, start time.Time) {
	p := l.progress(tables, start)
	attrs := []any{"tables_done", p.tablesDone, "tables", p.tables, "rows", p.rows, "est_rows", p.estRows,
		"bytes", p.bytes, "mib_per_second", round1(mibPerSecond(p.bytes, p.elapsed)), "rows_per_second", int64(p.rowRate())}
	if left, ok := p.left(); ok {
		attrs = append(attrs, "time_left", left.Round(time.Second))
	}
	l.log.Info(l.what+" progress", attrs...)
	for _, lt := range tables {
		started := lt.started.Load()
		if started == 0 || lt.done.Load() {
			continue
		}
		took := time.Since(time.Unix(0, started))
		rows := lt.rows.Load()
		attrs := []any{"table", lt.src.Table.String(), "rows", rows, "est_rows", lt.src.EstRows,
			"bytes", lt.bytes.Load(), "mib_per_second", round1(mibPerSecond(lt.bytes.Load(), took))}
		if rate := float64(rows) / took.Seconds(); rate > 0 && lt.src.EstRows > rows {
			attrs = append(attrs, "time_left", (time.Duration(float64(lt.src.EstRows-rows)/rate) * time.Second).Round(time.Second))
		}
		l.log.Info(l.what+" table progress", attrs...)
	}
}

// drawLine redraws the live progress line.
func drawLine(w io.Writer, target string, p progress) {
	line := fmt.Sprintf("loading %s: %d/%d tables, %d of ~%d rows, %.1f MiB, %.1f MiB/s",
		target, p.tablesDone, p.tables, p.rows, p.estRows, float64(p.bytes)/(1<<20), mibPerSecond(p.bytes, p.elapsed))
	if left, ok := p.left(); ok {
		line += fmt.Sprintf(", %s left", left.Round(time.Second))
	}
	fmt.Fprint(w, "\r\033[K"+line)
}

func mibPerSecond(bytes int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(bytes) / (1 << 20) / d.Seconds()
}

func round1(f float64) float64 { return float64(int64(f*10+0.5)) / 10 }
