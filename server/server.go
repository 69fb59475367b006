// Package server is every instance's HTTP API: it receives batches from
// sources and reports status, health and metrics. Routes use gorilla/mux.
package server

import (
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/pagarme/teleport/config"
	"github.com/pagarme/teleport/database/load"
	"github.com/pagarme/teleport/server/wire"
)

// Info is what an instance says about itself in /status.
type Info struct {
	Name    string // database.name
	Version string // the binary's version
	Role    string // "source", "target" or "source+target"
	// Quiet, on a source, is when its batcher last found nothing to cut:
	// a change past a target's last tick is at most that old (see capLag).
	Quiet func() time.Time
	// Failing, on a source, says why sends to each failing target fail.
	Failing func() map[string]wire.SendFailure
}

// Server serves the HTTP API of one instance.
type Server struct {
	cfg     config.Server
	db      *sql.DB
	log     *slog.Logger
	info    Info
	started time.Time
	ln      net.Listener
	handler http.Handler

	maxBody         int64         // POST /batches body limit, compressed
	maxDecompressed int64         // and decompressed: server.max_chunk_mib
	idle            time.Duration // server.idle_timeout
	sources         map[string]bool
	decoding        chan []byte // a buffer for each chunk decompressed at once
	onBatch         func()      // called when a batch is stored in full
	copies          copies      // initial-load copies in flight
	transfers       transfers   // chunks being read, and refused
	stopper         Stopper     // the applier, for a verify
	verifies        verifySessions
	holder          *load.Holder // on a source: the snapshots of its targets' loads
}

// maxDecoding is how many chunks are decompressed and checked at once,
// each into a buffer of its own kept for the next, which may grow to
// server.max_chunk_mib. One at a time keeps a flood of bombs under 120 MB
// (TestE2E_ChunkBombRefused); a chunk waits its turn only once it has been
// read off the network, so a slow link never holds the turn.
const maxDecoding = 1

// OnBatchStored sets fn to be called, without blocking, each time the last
// chunk of a batch is stored, so the applier need not wait for its tick.
// Call it before Run.
func (s *Server) OnBatchStored(fn func()) { s.onBatch = fn }

// New builds the server; it does not listen until Listen or Run.
func New(cfg config.Server, db *sql.DB, info Info, log *slog.Logger) *Server {
	def := config.Default().Server
	s := &Server{cfg: cfg, db: db, log: log.With("worker", "server"), info: info, started: time.Now(),
		maxDecompressed: int64(cmp.Or(cfg.MaxChunkMiB, def.MaxChunkMiB)) << 20,
		idle:            cmp.Or(cfg.IdleTimeout, def.IdleTimeout).Duration(),
		decoding:        make(chan []byte, maxDecoding)}
	for range maxDecoding {
		s.decoding <- nil
	}
	// gzip of incompressible JSON is a little larger than the JSON.
	s.maxBody = s.maxDecompressed + s.maxDecompressed/64 + 1<<10
	if len(cfg.Sources) > 0 {
		s.sources = map[string]bool{}
		for _, name := range cfg.Sources {
			s.sources[name] = true
		}
	}
	r := mux.NewRouter()
	r.HandleFunc(wire.RouteHealthz, s.healthz).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc(wire.RouteReadyz, s.readyz).Methods(http.MethodGet, http.MethodHead)
	api := r.NewRoute().Subrouter()
	api.Use(s.idleDeadline, s.authenticate, s.checkSourceName)
	api.HandleFunc(wire.RouteStatus, s.status).Methods(http.MethodGet)
	api.HandleFunc(wire.RouteMetrics, s.metrics).Methods(http.MethodGet)
	api.HandleFunc(wire.RouteBatches, s.receiveBatch).Methods(http.MethodPost)
	api.Handle(wire.RouteBatchAck, s.checkInstance(http.HandlerFunc(s.batchAck))).Methods(http.MethodGet)
	api.HandleFunc(wire.RouteSkip, s.skipBatch).Methods(http.MethodPost)
	api.Handle(wire.RouteLoad, s.checkInstance(http.HandlerFunc(s.beginLoad))).Methods(http.MethodPost)
	api.Handle(wire.RouteLoadCopy, s.checkInstance(http.HandlerFunc(s.copyTable))).Methods(http.MethodPut)
	api.Handle(wire.RouteLoadFinish, s.checkInstance(http.HandlerFunc(s.finishLoad))).Methods(http.MethodPost)
	api.HandleFunc(wire.RouteLoadSnapshot, s.holdSnapshot).Methods(http.MethodPost)
	api.HandleFunc(wire.RouteLoadSnapshot, s.releaseSnapshot).Methods(http.MethodDelete)
	api.Handle(wire.RouteVerifyStop, s.checkInstance(http.HandlerFunc(s.verifyStop))).Methods(http.MethodPost)
	api.Handle(wire.RouteVerify, s.checkInstance(http.HandlerFunc(s.verifyHash))).Methods(http.MethodPost)
	api.Handle(wire.RouteVerifyRows, s.checkInstance(http.HandlerFunc(s.verifyRows))).Methods(http.MethodPost)
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no route %s %s", r.Method, r.URL.Path))
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed on %s", r.Method, r.URL.Path))
	})
	s.handler = r
	return s
}

// checkSourceName answers 400 to a request whose path names a source that no
// instance can be named (see config.CheckName), and 403 to one naming a
// source server.sources leaves out, before any handler reads or stores
// anything under it.
func (s *Server) checkSourceName(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if source, ok := mux.Vars(r)["source"]; ok {
			if err := config.CheckName(source); err != nil {
				writeError(w, http.StatusBadRequest, "source in the path: "+err.Error())
				return
			}
			if err := s.admitted(source); err != nil {
				writeError(w, http.StatusForbidden, err.Error())
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// admitted says why source may not send here, or returns nil: with
// server.sources set, only the sources it lists may.
func (s *Server) admitted(source string) error {
	if s.sources == nil || s.sources[source] {
		return nil
	}
	return fmt.Errorf("source %s is not in this instance's server.sources: add it there (and restart) to take its batches", source)
}

// Handler returns the routes, for tests with httptest.
func (s *Server) Handler() http.Handler { return s.handler }

// Listen binds server.hostname:server.port, so a port already in use is a
// start-up error rather than a failure after the workers started.
func (s *Server) Listen() error {
	addr := net.JoinHostPort(s.cfg.Hostname, strconv.Itoa(s.cfg.Port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s (server.hostname, server.port): %w", addr, err)
	}
	s.ln = ln
	return nil
}

// Addr returns the address the server listens on, once Listen succeeded.
func (s *Server) Addr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Run serves until ctx is done, then shuts down, giving requests in flight a
// few seconds to finish. It returns nil on shutdown.
func (s *Server) Run(ctx context.Context) error {
	if s.ln == nil {
		if err := s.Listen(); err != nil {
			return err
		}
	}
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		// No ReadTimeout or WriteTimeout: a body may take as long as its
		// link needs; idleDeadline and idleReader drop one that stops.
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	tlsOn := s.cfg.TLSCertFile != ""
	switch {
	case s.cfg.AuthToken == "":
		s.log.Warn("no server.auth_token configured: only loopback clients are served", "addr", s.Addr())
	case !tlsOn:
		s.log.Warn("server.auth_token is sent in clear text: set server.tls_cert_file and server.tls_key_file unless the network is private", "addr", s.Addr())
	}
	s.log.Info("listening", "addr", s.Addr(), "tls", tlsOn)
	errc := make(chan error, 1)
	go func() {
		var err error
		if tlsOn {
			err = hs.ServeTLS(s.ln, s.cfg.TLSCertFile, s.cfg.TLSKeyFile)
		} else {
			err = hs.Serve(s.ln)
		}
		errc <- err
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("serve on %s: %w", s.Addr(), err)
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutCtx); err != nil {
		_ = hs.Close() // requests still running after the grace period are cut off
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve on %s: %w", s.Addr(), err)
	}
	return nil
}

// authenticate lets a request through when it carries the configured bearer
// token or, with no token configured, when it comes from a loopback address.
func (s *Server) authenticate(next http.Handler) http.Handler {
	want := sha256.Sum256([]byte(s.cfg.AuthToken))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.AuthToken == "" {
			if !isLoopback(r.RemoteAddr) {
				writeError(w, http.StatusForbidden, "this instance has no server.auth_token, so it serves only loopback clients: set server.auth_token here and auth_token in the source's target entry")
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		got := sha256.Sum256([]byte(tok))
		// Comparing digests keeps the comparison constant-time whatever the length.
		if !ok || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="teleport"`)
			writeError(w, http.StatusUnauthorized, "missing or wrong bearer token: the source's targets.NAME.auth_token must equal this instance's server.auth_token")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func isLoopback(remoteAddr string) bool {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz answers 200 when the database answers within two seconds.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.db.PingContext(ctx); err != nil {
		writeError(w, http.StatusServiceUnavailable, "database unreachable: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v) // the client went away; nothing left to tell it
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, wire.ErrorResponse{Error: msg})
}
