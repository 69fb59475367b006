package transmitter

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/pagarme/teleport/config"
	"github.com/pagarme/teleport/database/load"
	"github.com/pagarme/teleport/server/wire"
)

// loadSnapshot is the snapshot a run of a load reads in: the one the source
// instance holds for the target's load, or, when the instance cannot hold
// it, one the run exports itself, which ends with it.
type loadSnapshot struct {
	id, text string
	reused   bool           // held by the instance since an earlier run
	own      *load.Snapshot // exported by this run
	release  func(context.Context)
}

// releaseLocal ends a snapshot this run exported; the instance's is kept.
func (s *loadSnapshot) releaseLocal() {
	if s.own != nil {
		s.own.Release()
	}
}

// releaseHeld asks the instance to let go of the snapshot it held for
// the load, once the load is finished.
func (s *loadSnapshot) releaseHeld(ctx context.Context) {
	if s.release != nil {
		s.release(ctx)
	}
}

// instanceTimeout bounds a request to the source instance on this host.
const instanceTimeout = 30 * time.Second

// holdSnapshot asks the source instance on this host (srv is its server
// section) to hold the snapshot of the load, a new one when fresh; when it
// cannot (it is not running, or older), the run exports its own and says
// that an interrupted run will not resume within a table.
func (l *loader) holdSnapshot(ctx context.Context, db *sql.DB, srv config.Server, fresh bool) (*loadSnapshot, error) {
	ls, err := l.askInstance(ctx, srv, http.MethodPost, fresh)
	if err == nil {
		s := &loadSnapshot{id: ls.ID, text: ls.Snapshot, reused: ls.Reused}
		s.release = func(ctx context.Context) {
			if _, err := l.askInstance(ctx, srv, http.MethodDelete, false); err != nil {
				l.log.Warn("the source instance could not be asked to let go of the load's snapshot: it does "+
					"within "+load.HoldIdle.String(), "err", err)
			}
		}
		return s, nil
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	l.log.Warn("the source instance does not hold the load's snapshot, so this run exports its own: if the run stops, "+
		"the next one copies the tables it had not finished from the start, chunks done included", "err", err)
	own, err := load.ExportSnapshot(ctx, db)
	if err != nil {
		return nil, err
	}
	return &loadSnapshot{id: own.ID, text: own.Text, own: own}, nil
}

// askInstance sends method to the instance's RouteLoadSnapshot for the
// load's target and decodes its answer.
func (l *loader) askInstance(ctx context.Context, srv config.Server, method string, fresh bool) (wire.LoadSnapshot, error) {
	var ls wire.LoadSnapshot
	base, client, err := LocalInstance(srv)
	if err != nil {
		return ls, err
	}
	u := base + strings.Replace(wire.RouteLoadSnapshot, "{target}", url.PathEscape(l.opts.Target), 1)
	if fresh {
		u += "?fresh=true"
	}
	ctx, cancel := context.WithTimeout(ctx, instanceTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return ls, err
	}
	if srv.AuthToken != "" {
		req.Header.Set("Authorization", "Bearer "+srv.AuthToken)
	}
	resp, err := client.Do(req)
	if err != nil {
		return ls, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return ls, fmt.Errorf("%s %s: %w", method, u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return ls, fmt.Errorf("%s %s: %s: %s", method, u, resp.Status, strings.TrimSpace(string(body)))
	}
	if method == http.MethodPost {
		if err := json.Unmarshal(body, &ls); err != nil || ls.ID == "" {
			return ls, fmt.Errorf("%s %s: answer %q is no held snapshot (%v)", method, u, body, err)
		}
	}
	return ls, nil
}
