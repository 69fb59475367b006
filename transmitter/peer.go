package transmitter

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/pagarme/teleport/config"
	"github.com/pagarme/teleport/server/wire"
)

// maxAnswer bounds how much of an answer body is read: an ack or an error
// message is small.
const maxAnswer = 1 << 20

// peer is the HTTP client of one target's teleport server.
type peer struct {
	target string // the target's name, the key of targets in the config
	url    string // base URL, no trailing slash
	token  string // bearer token; empty: no Authorization header
	client *idleClient
	// slow is for the requests of a load whose answer comes after long
	// work on the target (dropping or adding back foreign keys).
	slow *idleClient
}

// slowIdle is how long slow waits at least for a byte.
const slowIdle = 15 * time.Minute

// idleClient is an HTTP client without an overall timeout: a request fails
// when its bytes stop moving for idle (see idleConn).
type idleClient struct {
	*http.Client
	idle time.Duration
}

// newPeer builds the client for target t, reading its CA bundle if it has one.
func newPeer(name string, t config.Target) (*peer, error) {
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if t.Endpoint.CAFile != "" {
		pem, err := os.ReadFile(t.Endpoint.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read targets.%s.endpoint.ca_file: %w", name, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("read targets.%s.endpoint.ca_file %s: no PEM certificate in it", name, t.Endpoint.CAFile)
		}
		tlsCfg.RootCAs = pool
	}
	return &peer{
		target: name,
		url:    t.Endpoint.URL(),
		token:  t.AuthToken,
		client: newIdleClient(tlsCfg, t.Endpoint.Idle()),
		slow:   newIdleClient(tlsCfg, max(slowIdle, t.Endpoint.Idle())),
	}, nil
}

func newIdleClient(tlsCfg *tls.Config, idle time.Duration) *idleClient {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	dialer := &net.Dialer{Timeout: idle, KeepAlive: 30 * time.Second}
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dialer.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return newIdleConn(c, idle), nil
	}
	// A connection left idle in the pool is dropped before its own idle
	// deadline could fail the next request sent on it.
	tr.IdleConnTimeout = idle / 2
	tr.TLSHandshakeTimeout = idle
	tr.TLSClientConfig = tlsCfg
	// A redirect is a misconfigured endpoint: report it rather than resend
	// a batch somewhere else.
	noRedirect := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &idleClient{Client: &http.Client{Transport: tr, CheckRedirect: noRedirect}, idle: idle}
}

// postChunk sends one chunk of source's batch seq, body being the
// gzip-compressed JSON of a server.BatchChunk and sum the SHA-256 of that
// JSON, and returns the target's answer.
func (p *peer) postChunk(ctx context.Context, source string, seq int64, chunk int, body, sum []byte) (wire.BatchAck, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url+wire.RouteBatches, bytes.NewReader(body))
	if err != nil {
		return wire.BatchAck{}, fmt.Errorf("send batch %d chunk %d to %s (%s): %w", seq, chunk, p.target, p.url, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Encoding", "gzip")
	req.Header.Set(wire.HeaderSource, source)
	req.Header.Set(wire.HeaderSeq, strconv.FormatInt(seq, 10))
	req.Header.Set(wire.HeaderChunk, strconv.Itoa(chunk))
	req.Header.Set(wire.HeaderChecksum, hex.EncodeToString(sum))
	ack, err := p.do(req)
	if err != nil {
		return wire.BatchAck{}, fmt.Errorf("send batch %d chunk %d to %s (%s): %w", seq, chunk, p.target, p.url, err)
	}
	return ack, nil
}

// getAck asks the target how far it has received and applied the batches of
// source, sent by instance (the target refuses another than the source's).
func (p *peer) getAck(ctx context.Context, source, instance string) (wire.BatchAck, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url+wire.Path(wire.RouteBatchAck, source)+"?instance="+url.QueryEscape(instance), nil)
	if err != nil {
		return wire.BatchAck{}, fmt.Errorf("ask %s (%s) which batches it has: %w", p.target, p.url, err)
	}
	ack, err := p.do(req)
	if err != nil {
		return wire.BatchAck{}, fmt.Errorf("ask %s (%s) which batches it has: %w", p.target, p.url, err)
	}
	return ack, nil
}

// do sends req with the bearer token and decodes a 2xx answer as a BatchAck.
// Its errors say what went wrong without repeating the URL.
func (p *peer) do(req *http.Request) (wire.BatchAck, error) {
	var ack wire.BatchAck
	err := p.doJSON(p.client, req, &ack)
	return ack, err
}

// refusal is a 4xx answer: the target understood the request and declines
// it, so sending it again unchanged does not help.
type refusal struct {
	status string // as "409 Conflict"
	msg    string
}

func (r *refusal) Error() string { return r.status + ": " + r.msg }

// doJSON sends req with the bearer token through c and decodes a 2xx answer
// into out. A 4xx answer is a *refusal.
func (p *peer) doJSON(c *idleClient, req *http.Request, out any) error {
	return p.doJSONUpTo(c, req, out, maxAnswer)
}

// doJSONUpTo is doJSON reading at most limit bytes of the answer.
func (p *peer) doJSONUpTo(c *idleClient, req *http.Request, out any, limit int64) error {
	req.Header.Set("Accept", "application/json")
	if p.token != "" {
		req.Header.Set("Authorization", "Bearer "+p.token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return p.transportError(err, c.idle)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit))
	if err != nil {
		return fmt.Errorf("%s: read answer: %w", resp.Status, err)
	}
	if resp.StatusCode >= 400 && resp.StatusCode < 500 {
		return &refusal{status: resp.Status, msg: errorMessage(body)}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("%s: %s", resp.Status, errorMessage(body))
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("%s: decode answer: %w", resp.Status, err)
	}
	return nil
}

// transportError says why a request got no answer. The *url.Error wrapper
// is dropped: its text repeats the method and URL the caller names already.
func (p *peer) transportError(err error, idle time.Duration) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var ne net.Error
	var oe *net.OpError
	switch {
	case errors.Is(err, context.Canceled):
		return err
	case errors.As(err, &oe) && oe.Op == "dial":
		return fmt.Errorf("target unreachable: %w", err)
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("no byte moved for %s (targets.%s.endpoint.idle_timeout): link down or target stalled: %w", idle, p.target, err)
	default:
		return err
	}
}

// errorMessage returns the message of a server.ErrorResponse body, or the
// start of the body when it is not one (a proxy's HTML page, say).
func errorMessage(body []byte) string {
	var er wire.ErrorResponse
	if err := json.Unmarshal(body, &er); err == nil && er.Error != "" {
		return er.Error
	}
	s := strings.TrimSpace(string(body))
	if s == "" {
		return "empty answer"
	}
	const maxLen = 200
	if len(s) > maxLen {
		s = strings.ToValidUTF8(s[:maxLen], "") + "..."
	}
	return s
}
