package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/pagarme/teleport/config"
	"github.com/pagarme/teleport/database/migrate"
	"github.com/pagarme/teleport/server"
	"github.com/pagarme/teleport/server/wire"
	"github.com/pagarme/teleport/transmitter"
)

// statusReport is what -mode status prints with -json.
type statusReport struct {
	Instance instanceState `json:"instance"`
	Status   wire.Status   `json:"status"`
	Healthy  bool          `json:"healthy"`
	Problems []string      `json:"problems"` // never null
}

// instanceState says whether the instance answered its /status.
type instanceState struct {
	URL       string `json:"url"`
	Answering bool   `json:"answering"`
	Error     string `json:"error,omitempty"` // why it did not
}

// unhealthy is -mode status's verdict that something is held or lags: exit
// status 2, its report printed already.
type unhealthy struct{ problems []string }

func (u unhealthy) Error() string { return strings.Join(u.problems, "\n") }

// instanceTimeout bounds the wait for the instance's /status.
const instanceTimeout = 3 * time.Second

// requireSchema fails unless the database has the teleport schema, at this
// binary's version: for the modes that run beside an instance and migrate
// nothing.
func requireSchema(ctx context.Context, db *sql.DB, cfg config.Config) error {
	installed, err := migrate.Current(ctx, db)
	if err != nil {
		return err
	}
	if !installed {
		return fmt.Errorf("database %s has no teleport schema: no instance ever ran on it with this configuration", cfg.Database.Database)
	}
	return nil
}

// showStatus prints the state of this instance's replication: from its
// /status when it answers, else from its database, so it works while the
// instance is down. It returns unhealthy when a batch is held or a lag is
// over maxLag.
func showStatus(ctx context.Context, db *sql.DB, cfg config.Config, o options, stdout io.Writer) error {
	if err := requireSchema(ctx, db, cfg); err != nil {
		return err
	}
	rep := statusReport{Problems: []string{}}
	st, url, err := askInstance(ctx, cfg.Server)
	if err == nil && st.Name != cfg.Database.Name {
		err = fmt.Errorf("the instance answering there is %q, not %q", st.Name, cfg.Database.Name)
	}
	rep.Instance = instanceState{URL: url, Answering: err == nil}
	if err != nil {
		rep.Instance.Error = err.Error()
		if st, err = server.ReadStatus(ctx, db); err != nil {
			return fmt.Errorf("read the replication state: %w", err)
		}
		st.Name = cfg.Database.Name
		st.Role = "target"
		if cfg.HasTargets() {
			st.Role = "source"
		}
	}
	rep.Status = st
	rep.Problems = statusProblems(st, o.maxLag)
	rep.Healthy = len(rep.Problems) == 0
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		printStatus(stdout, rep)
	}
	if !rep.Healthy {
		return unhealthy{rep.Problems}
	}
	return nil
}

// askInstance gets the instance's /status at the address its server
// listens on (loopback for a wildcard address).
func askInstance(ctx context.Context, cfg config.Server) (wire.Status, string, error) {
	base, client, err := transmitter.LocalInstance(cfg)
	if err != nil {
		return wire.Status{}, "", err
	}
	url := base + wire.RouteStatus
	ctx, cancel := context.WithTimeout(ctx, instanceTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return wire.Status{}, url, err
	}
	if cfg.AuthToken != "" {
		req.Header.Set("Authorization", "Bearer "+cfg.AuthToken)
	}
	resp, err := client.Do(req)
	if err != nil {
		return wire.Status{}, url, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return wire.Status{}, url, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	var st wire.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return wire.Status{}, url, fmt.Errorf("GET %s: %w", url, err)
	}
	return st, url, nil
}

// statusProblems lists what keeps replication from being healthy: a held
// batch, a lag over maxLag, sends to a target failing for longer than maxLag.
func statusProblems(st wire.Status, maxLag time.Duration) []string {
	out := []string{}
	over := func(lag float64) bool { return lag > maxLag.Seconds() }
	for _, t := range st.Targets {
		if f := t.SendFailure; f != nil && time.Since(f.Since) > maxLag {
			out = append(out, fmt.Sprintf("target %s: sending fails since %s (%d passes in a row): %s",
				t.Name, f.Since.UTC().Format(time.RFC3339), f.Failures, f.Error))
		}
		if over(t.LagSeconds) {
			out = append(out, fmt.Sprintf("target %s lags %.1f s, more than -max-lag %v: %d batches not stored there yet, applied up to %d of %d",
				t.Name, t.LagSeconds, maxLag, t.UnsentBatches, t.AppliedSeq, t.LastSeq))
		}
	}
	for _, s := range st.Sources {
		if s.Held {
			since := ""
			if s.ErrorSince != nil {
				since = " since " + s.ErrorSince.UTC().Format(time.RFC3339)
			}
			out = append(out, fmt.Sprintf("source %s: batch %d held%s: %s", s.Name, s.HeldSeq, since, s.Error))
		}
		if over(s.LagSeconds) {
			out = append(out, fmt.Sprintf("source %s lags %.1f s, more than -max-lag %v: applied up to %d, stored up to %d",
				s.Name, s.LagSeconds, maxLag, s.AppliedSeq, s.ReceivedSeq))
		}
	}
	return out
}

// printStatus writes rep for a person: the instance, then one line per
// target, source and load, then the verdict.
func printStatus(w io.Writer, rep statusReport) {
	st := rep.Status
	if rep.Instance.Answering {
		fmt.Fprintf(w, "instance %s (%s): answering at %s, version %s, up %s\n", st.Name, st.Role, rep.Instance.URL, st.Version,
			(time.Duration(st.UptimeSeconds) * time.Second).String())
	} else {
		fmt.Fprintf(w, "instance %s (%s): not answering at %s (%s); state read from its database\n", st.Name, st.Role, rep.Instance.URL, rep.Instance.Error)
	}
	for _, t := range st.Targets {
		fmt.Fprintf(w, "target %s: batches cut %d, stored there %d, applied there %d; lag %.1f s; %d events not stored there yet\n",
			t.Name, t.LastSeq, t.AckedSeq, t.AppliedSeq, t.LagSeconds, t.PendingEvents)
		if f := t.SendFailure; f != nil {
			fmt.Fprintf(w, "  sending FAILS since %s (%d passes in a row): %s\n", f.Since.UTC().Format(time.RFC3339), f.Failures, f.Error)
		}
		for _, s := range t.SchemaSkipped {
			fmt.Fprintf(w, "  schema skipped: %s: %s\n", s.Object, s.Reason)
		}
	}
	for _, s := range st.Sources {
		held := "nothing held"
		if s.Held {
			held = fmt.Sprintf("batch %d HELD: %s", s.HeldSeq, s.Error)
		}
		fmt.Fprintf(w, "source %s: batches stored %d, applied %d; lag %.1f s; %s\n", s.Name, s.ReceivedSeq, s.AppliedSeq, s.LagSeconds, held)
		for _, k := range s.SchemaSkipped {
			fmt.Fprintf(w, "  schema left out: %s: %s\n", k.Object, k.Reason)
		}
	}
	for _, l := range st.Loads {
		fmt.Fprintf(w, "%s from %s: %s, %d of %d tables done, %d rows\n", wire.LoadKind(l.Resync), l.Source, l.State, l.TablesDone, len(l.Tables), l.Rows)
	}
	if len(st.Targets)+len(st.Sources) == 0 {
		fmt.Fprintln(w, "no target and no source yet")
	}
	if rep.Healthy {
		fmt.Fprintln(w, "healthy")
		return
	}
	fmt.Fprintf(w, "NOT HEALTHY (%d):\n", len(rep.Problems))
	for _, p := range rep.Problems {
		fmt.Fprintln(w, "  "+p)
	}
}
