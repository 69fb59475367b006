package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pagarme/teleport/config"
	"github.com/pagarme/teleport/database/dbtest"
	"github.com/pagarme/teleport/database/migrate"
	"github.com/pagarme/teleport/server"
	"github.com/pagarme/teleport/server/wire"
)

func TestMain(m *testing.M) { os.Exit(dbtest.Run(m)) }

func newServer(t *testing.T, token string) *server.Server {
	t.Helper()
	db, _ := dbtest.Shared(t).NewDB(t)
	if _, err := migrate.Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default().Server
	cfg.Hostname, cfg.Port, cfg.AuthToken = "127.0.0.1", 0, token
	return server.New(cfg, db, server.Info{Name: "src", Version: "v-test", Role: "source"}, dbtest.Logger(t))
}

func do(h http.Handler, method, path, remote, auth string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, nil)
	req.RemoteAddr = remote
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestServer_Auth(t *testing.T) {
	t.Parallel()
	open := newServer(t, "").Handler()
	locked := newServer(t, "s3cret").Handler()
	tests := []struct {
		name   string
		h      http.Handler
		remote string
		auth   string
		want   int
	}{
		{"no token, loopback v4", open, "127.0.0.1:5000", "", http.StatusOK},
		{"no token, loopback v6", open, "[::1]:5000", "", http.StatusOK},
		{"no token, remote client refused", open, "192.0.2.7:5000", "", http.StatusForbidden},
		{"no token, remote client with a token still refused", open, "192.0.2.7:5000", "Bearer x", http.StatusForbidden},
		{"token, right one from afar", locked, "192.0.2.7:5000", "Bearer s3cret", http.StatusOK},
		{"token, wrong one", locked, "192.0.2.7:5000", "Bearer s3creT", http.StatusUnauthorized},
		{"token, missing even from loopback", locked, "127.0.0.1:5000", "", http.StatusUnauthorized},
		{"token, not a bearer", locked, "127.0.0.1:5000", "Basic s3cret", http.StatusUnauthorized},
		{"token, longer", locked, "127.0.0.1:5000", "Bearer s3cretX", http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := do(tt.h, http.MethodGet, "/status", tt.remote, tt.auth)
			if rec.Code != tt.want {
				t.Errorf("GET /status from %s with %q = %d %s, want %d", tt.remote, tt.auth, rec.Code, rec.Body, tt.want)
			}
			if rec.Code >= 400 {
				var e wire.ErrorResponse
				if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" {
					t.Errorf("error body %q is not a JSON error message", rec.Body)
				}
			}
		})
	}
}

func TestServer_HealthAndStatus(t *testing.T) {
	t.Parallel()
	h := newServer(t, "").Handler()
	if rec := do(h, http.MethodGet, "/healthz", "192.0.2.7:1", ""); rec.Code != http.StatusOK {
		t.Errorf("GET /healthz = %d, want 200 for any client", rec.Code)
	}
	if rec := do(h, http.MethodGet, "/readyz", "127.0.0.1:1", ""); rec.Code != http.StatusOK {
		t.Errorf("GET /readyz = %d %s, want 200 with the database up", rec.Code, rec.Body)
	}
	rec := do(h, http.MethodGet, "/status", "127.0.0.1:1", "")
	var st wire.Status
	if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil {
		t.Fatalf("GET /status body %q: %v", rec.Body, err)
	}
	if st.Name != "src" || st.Version != "v-test" || st.Role != "source" || st.UptimeSeconds < 0 {
		t.Errorf("GET /status = %+v, want name src, version v-test, role source", st)
	}
	if rec := do(h, http.MethodGet, "/nope", "127.0.0.1:1", ""); rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), "/nope") {
		t.Errorf("GET /nope = %d %s, want 404 naming the path", rec.Code, rec.Body)
	}
	if rec := do(h, http.MethodPost, "/status", "127.0.0.1:1", ""); rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /status = %d, want 405", rec.Code)
	}
}

func TestServer_ReadyzDatabaseDown(t *testing.T) {
	t.Parallel()
	c := dbtest.Start(t)
	db, _ := c.NewDB(t)
	cfg := config.Default().Server
	h := server.New(cfg, db, server.Info{Name: "x"}, dbtest.Logger(t)).Handler()
	c.Stop(t, "immediate")
	db.SetMaxIdleConns(0) // drop pooled connections so the ping dials the stopped server
	if rec := do(h, http.MethodGet, "/readyz", "127.0.0.1:1", ""); rec.Code != http.StatusServiceUnavailable {
		t.Errorf("GET /readyz with the database stopped = %d, want 503", rec.Code)
	}
}

func TestServer_RunShutdown(t *testing.T) {
	t.Parallel()
	s := newServer(t, "")
	if err := s.Listen(); err != nil {
		t.Fatalf("Listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	resp, err := http.Get("http://" + s.Addr() + "/healthz")
	if err != nil {
		t.Fatalf("GET /healthz over TCP: %v", err)
	}
	resp.Body.Close()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run after cancel = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return within 5s of cancel")
	}
}
