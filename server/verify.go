package server

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/mux"

	"github.com/pagarme/teleport/database"
	"github.com/pagarme/teleport/database/load"
	"github.com/pagarme/teleport/database/store"
	"github.com/pagarme/teleport/database/verify"
	"github.com/pagarme/teleport/server/wire"
)

// Stopper is the applier, as a verify uses it: it keeps a source's batches
// after one from being applied, for a while.
type Stopper interface {
	StopAfter(source string, seq int64, d time.Duration)
	Resume(source string)
}

// OnVerify gives the server the applier a verify stops.
func (s *Server) OnVerify(st Stopper) { s.stopper = st }

// maxVerifyStop bounds how long a verify keeps a source's batches from
// being applied: a source that stops asking (killed mid-verify) holds the
// stream no longer than this.
const maxVerifyStop = 2 * time.Minute

// maxVerifyRequest bounds a VerifyRequest body.
const maxVerifyRequest = 16 << 20

// verifyStop keeps the source's batches after a sequence number from being
// applied while the source cuts the batch a verify compares at.
func (s *Server) verifyStop(w http.ResponseWriter, r *http.Request) {
	source := mux.Vars(r)["source"]
	var req wire.VerifyStop
	if !s.decodeVerify(w, r, &req) {
		return
	}
	if req.Seq < 0 || req.Millis <= 0 {
		writeError(w, http.StatusBadRequest, "verify stop: want seq >= 0 and millis > 0")
		return
	}
	applied, _, err := sourceApplied(r.Context(), s.db, source)
	if err != nil {
		s.log.Error("verify: read source", "source", source, "err", err)
		writeError(w, http.StatusInternalServerError, "read source state: database error")
		return
	}
	// A batch applied since the source read req.Seq was cut before the one
	// the verify will cut: stopping after it is as good.
	s.stopper.StopAfter(source, max(applied, req.Seq), min(time.Duration(req.Millis)*time.Millisecond, maxVerifyStop))
	writeJSON(w, http.StatusOK, wire.VerifyStopped{AppliedSeq: applied})
}

// loadJustFinished reports whether held, why a batch of source is held, is
// the wait for an initial load that has finished since: the applier's next
// pass applies the batch (a verify run right after a resync meets it).
func (s *Server) loadJustFinished(ctx context.Context, source, held string) bool {
	if !strings.Contains(held, load.ErrLoadUnderway.Error()) {
		return false
	}
	f, err := load.ReadLoadFilter(ctx, s.db, source)
	return err == nil && !f.Underway()
}

// verifyHash lets the applier reach batch req.Seq and no further, opens a
// snapshot there, lets the applier go on, and hashes the tables in it.
func (s *Server) verifyHash(w http.ResponseWriter, r *http.Request) {
	source := mux.Vars(r)["source"]
	var req wire.VerifyRequest
	if !s.decodeVerify(w, r, &req) {
		return
	}
	ctx := r.Context()
	s.stopper.StopAfter(source, req.Seq, maxVerifyStop)
	defer s.stopper.Resume(source)
	deadline := time.Now().Add(maxVerifyStop)
	for {
		applied, held, err := sourceApplied(ctx, s.db, source)
		switch {
		case err != nil:
			s.log.Error("verify: read source", "source", source, "err", err)
			writeError(w, http.StatusInternalServerError, "read source state: database error")
			return
		case applied > req.Seq:
			writeError(w, http.StatusConflict, fmt.Sprintf("batch %d of %s is applied already, past %d", applied, source, req.Seq))
			return
		case applied == req.Seq:
		case held != "" && !s.loadJustFinished(ctx, source, held):
			writeError(w, http.StatusConflict, fmt.Sprintf("batch %d of %s is held: %s", applied+1, source, held))
			return
		case time.Now().After(deadline):
			received, _, _ := store.BatchAckFor(ctx, s.db, source) // for the message only
			s.log.Warn("verify: batch not applied in time", "source", source, "seq", req.Seq, "applied_seq", applied, "received_seq", received)
			writeError(w, http.StatusGatewayTimeout, fmt.Sprintf("batch %d of %s not applied after %v (applied: %d; stored in full up to %d)",
				req.Seq, source, maxVerifyStop, applied, received))
			return
		default:
			select {
			case <-ctx.Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
			continue
		}
		break
	}
	// The snapshot outlives this request, for the VerifyRowsRequests: a
	// transaction begun with the request's context would end with it.
	tx, err := verify.Begin(context.WithoutCancel(ctx), s.db)
	if err != nil {
		s.log.Error("verify: begin", "source", source, "err", err)
		writeError(w, http.StatusInternalServerError, "begin snapshot: database error")
		return
	}
	defer func() {
		if tx != nil {
			tx.Rollback() //nolint:errcheck // read only
		}
	}()
	if applied, _, err := sourceApplied(ctx, tx, source); err != nil || applied != req.Seq {
		writeError(w, http.StatusConflict, fmt.Sprintf("snapshot at batch %d of %s, not %d (%v)", applied, source, req.Seq, err))
		return
	}
	s.stopper.Resume(source)
	sess := &verifySession{tx: tx, tables: make([]verify.Table, len(req.Tables))}
	ans := wire.VerifyAnswer{Seq: req.Seq, Tables: make([]wire.TableHash, len(req.Tables))}
	for i, t := range req.Tables {
		sess.tables[i] = verify.Table{Schema: t.Schema, Name: t.Table, Columns: t.Columns, Key: t.Key}
		ans.Tables[i] = hashTable(ctx, tx, &sess.tables[i])
		if ctx.Err() != nil {
			return
		}
	}
	ans.Session = s.verifies.open(sess)
	tx = nil // the session owns it now
	writeJSON(w, http.StatusOK, ans)
}

// hashTable hashes one table in tx, behind a savepoint, so a table that
// does not exist here (or lacks a column) fails alone.
func hashTable(ctx context.Context, tx *sql.Tx, t *verify.Table) wire.TableHash {
	if _, err := tx.ExecContext(ctx, `SAVEPOINT verify_table`); err != nil {
		return wire.TableHash{Error: err.Error()}
	}
	err := tx.QueryRowContext(ctx, `SELECT c.relkind = 'p' FROM pg_catalog.pg_class c WHERE c.oid = pg_catalog.to_regclass($1)`, t.Qualified()).Scan(&t.Partitioned)
	if errors.Is(err, sql.ErrNoRows) {
		_, _ = tx.ExecContext(ctx, `ROLLBACK TO SAVEPOINT verify_table`)
		return wire.TableHash{Error: "no such table on the target"}
	}
	var h wire.TableHash
	if err == nil {
		h.Rows, h.Sum, err = verify.Hash(ctx, tx, *t)
	}
	if err != nil {
		_, _ = tx.ExecContext(ctx, `ROLLBACK TO SAVEPOINT verify_table`)
		return wire.TableHash{Error: err.Error()}
	}
	_, _ = tx.ExecContext(ctx, `RELEASE SAVEPOINT verify_table`)
	return h
}

// verifyRows answers a table's bucket hashes, or the rows of some of its
// buckets, in a verify's snapshot, or closes it.
func (s *Server) verifyRows(w http.ResponseWriter, r *http.Request) {
	var req wire.VerifyRowsRequest
	if !s.decodeVerify(w, r, &req) {
		return
	}
	sess := s.verifies.take(req.Session)
	if sess == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no verify session %.40q: it ended, or was idle over %v", req.Session, verifySessionIdle))
		return
	}
	if req.Done {
		s.verifies.close(req.Session)
		writeJSON(w, http.StatusOK, wire.VerifyRows{Rows: []wire.KeyHash{}})
		return
	}
	defer s.verifies.give(req.Session)
	if req.Table < 0 || req.Table >= len(sess.tables) || req.Split < 1 || req.Split > 1<<16 || req.Split&(req.Split-1) != 0 ||
		(!req.Sums && (req.Limit < 1 || req.Limit > maxVerifyRows)) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("verify rows: table %d of %d, split %d, limit %d: want a table of the request, "+
			"a split in a power of two of buckets up to 65536 and a limit of 1 to %d", req.Table, len(sess.tables), req.Split, req.Limit, maxVerifyRows))
		return
	}
	t := sess.tables[req.Table]
	if req.Sums {
		bs, err := verify.HashBuckets(r.Context(), sess.tx, t, req.Split)
		if err != nil {
			writeError(w, http.StatusConflict, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, wire.VerifyRows{Rows: []wire.KeyHash{}, Buckets: bs})
		return
	}
	rows, err := verify.Rows(r.Context(), sess.tx, t, req.Split, req.Buckets, req.Limit)
	if err != nil {
		writeError(w, http.StatusConflict, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, wire.VerifyRows{Rows: rows})
}

// maxVerifyRows bounds the rows one VerifyRowsRequest answers.
const maxVerifyRows = 100000

// verifySessionIdle is how long a verify's snapshot stays open unused.
const verifySessionIdle = 2 * time.Minute

// verifySession is a target's snapshot a verify compares in, kept open for
// the requests that narrow a difference down.
type verifySession struct {
	tx     *sql.Tx
	tables []verify.Table
	busy   bool
	timer  *time.Timer
}

// verifySessions are the open verify snapshots, by id.
type verifySessions struct {
	mu sync.Mutex
	m  map[string]*verifySession
}

// open keeps sess, closing it after verifySessionIdle unused, and returns
// its id.
func (v *verifySessions) open(sess *verifySession) string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	id := hex.EncodeToString(b)
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.m == nil {
		v.m = map[string]*verifySession{}
	}
	v.m[id] = sess
	sess.timer = time.AfterFunc(verifySessionIdle, func() { v.close(id) })
	return id
}

// take returns session id for one request, or nil if it is unknown or in
// use; give it back with give.
func (v *verifySessions) take(id string) *verifySession {
	v.mu.Lock()
	defer v.mu.Unlock()
	sess := v.m[id]
	if sess == nil || sess.busy {
		return nil
	}
	sess.busy = true
	sess.timer.Stop()
	return sess
}

// give ends a request on session id.
func (v *verifySessions) give(id string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if sess := v.m[id]; sess != nil {
		sess.busy = false
		sess.timer.Reset(verifySessionIdle)
	}
}

// close ends session id, closing its snapshot.
func (v *verifySessions) close(id string) {
	v.mu.Lock()
	sess := v.m[id]
	delete(v.m, id)
	v.mu.Unlock()
	if sess != nil {
		sess.timer.Stop()
		_ = sess.tx.Rollback() // read only
	}
}

// sourceApplied reads source's applied_seq and, if the batch after it is
// held, why.
func sourceApplied(ctx context.Context, q database.Querier, source string) (applied int64, held string, err error) {
	var msg sql.NullString
	err = q.QueryRowContext(ctx, `SELECT applied_seq, CASE WHEN error_seq = applied_seq + 1 THEN error END FROM teleport.source WHERE name = $1`, source).
		Scan(&applied, &msg)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, "", nil
	}
	return applied, msg.String, err
}

// decodeVerify reads a verify request body into v, answering 400 if it
// cannot, and 409 if this instance has no applier to stop.
func (s *Server) decodeVerify(w http.ResponseWriter, r *http.Request, v any) bool {
	if s.stopper == nil {
		writeError(w, http.StatusConflict, "this instance applies no batches: not a target")
		return false
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxVerifyRequest))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "decode verify request: "+err.Error())
		return false
	}
	return true
}
