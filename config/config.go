// Package config loads and validates an instance's YAML configuration: the
// first thing main does, before any worker of the pipeline starts.
//
// The YAML keys and their units are those of the upstream teleport
// (processing_intervals are integer milliseconds). Parse and Load start from
// Default, so an omitted key, or a key given with an empty value, keeps its
// default. An unknown key is an error, not a silently ignored setting.
//
// Every string value may refer to environment variables as ${VAR}; write $$
// for a literal $ (a $ not followed by { or $ is kept as is). Expansion
// happens after the YAML is decoded, so a variable's value is never parsed as
// YAML. Secrets can also come from files: database.password_file,
// server.auth_token_file and targets.NAME.auth_token_file; a relative path
// is relative to the working directory.
package config

import (
	"net"
	"net/url"
	"strconv"
	"time"
)

// Config is the whole configuration of one teleport instance. An instance
// with Targets is a source; any instance can be a target, since every instance
// runs the server.
type Config struct {
	// BatchSize is, on a target, the most events applied in one transaction
	// when consecutive small batches are applied together; a larger batch is
	// still applied whole, alone (a source transaction is never split).
	// Default 10000 events.
	BatchSize int `yaml:"batch_size"`
	// MaxEventsPerBatch is, on a source, the most row changes per chunk when
	// a batch is sent (a chunk also closes at 8 MiB of JSON); a large source
	// transaction travels in several chunks of one batch and is still applied
	// in one transaction. Default 10000 row changes.
	MaxEventsPerBatch int `yaml:"max_events_per_batch"`
	// UseEventTriggers lets the instance install event triggers to notice
	// schema changes as they happen. They need privileges managed databases
	// often withhold; the default, false, relies only on the ddlwatcher's
	// catalog diff every ProcessingIntervals.DDLWatcher.
	UseEventTriggers bool `yaml:"use_event_triggers"`
	// ProcessingIntervals sets how often each worker runs.
	ProcessingIntervals Intervals `yaml:"processing_intervals"`
	// Database is the PostgreSQL database this instance manages.
	Database Database `yaml:"database"`
	// Server is where this instance listens for batches from its sources.
	Server Server `yaml:"server"`
	// Targets maps a target instance's name (its database.name) to where and
	// what to replicate to it. Nil or empty when this instance is not a source.
	Targets map[string]Target `yaml:"targets"`
}

// Intervals are the periods of the workers' loops, each in integer
// milliseconds in YAML (the upstream unit); each must be > 0.
type Intervals struct {
	// Batcher is how often pending events are cut into batches. Default 100 ms.
	Batcher Millis `yaml:"batcher"`
	// Transmitter is how often batches are sent to targets. Default 100 ms.
	Transmitter Millis `yaml:"transmitter"`
	// Applier is how often received batches are applied. Default 100 ms.
	Applier Millis `yaml:"applier"`
	// Vacuum is how often rows both peers are done with are deleted.
	// Default 500 ms.
	Vacuum Millis `yaml:"vacuum"`
	// DDLWatcher is how often the catalog is checked for schema changes.
	// Default 5000 ms.
	DDLWatcher Millis `yaml:"ddlwatcher"`
}

// Millis is a duration in whole milliseconds, as written in the YAML.
type Millis int

// Duration returns m as a time.Duration.
func (m Millis) Duration() time.Duration {
	return time.Duration(m) * time.Millisecond
}

// SSLModes are the values allowed for Database.SSLMode, as libpq defines them.
var SSLModes = []string{"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}

// Database says how to connect to the database this instance manages.
type Database struct {
	// Name is this instance's name, which its sources use as the key of
	// their targets section. Required: 1 to 63 letters, digits, '_', '.' or
	// '-', starting with a letter or digit.
	Name string `yaml:"name"`
	// Database is the PostgreSQL database name. Default "postgres".
	Database string `yaml:"database"`
	// Hostname is the database server's host name or IP address, or an
	// absolute directory holding its unix socket. Default "localhost".
	Hostname string `yaml:"hostname"`
	// Username is the role to connect as. Default "teleport".
	Username string `yaml:"username"`
	// Password is the role's password. Optional: when empty, libpq's
	// PGPASSWORD, PGPASSFILE and ~/.pgpass apply. After Parse it holds the
	// content of PasswordFile when that was set.
	Password string `yaml:"password"`
	// PasswordFile is a file whose content, trailing newlines trimmed, is the
	// password. Optional; cannot be used together with Password. Parse reads
	// it into Password and then clears it.
	PasswordFile string `yaml:"password_file"`
	// Port is the database server's TCP port (or the number in the unix
	// socket's name). Default 5432.
	Port int `yaml:"port"`
	// SSLMode is libpq's sslmode: one of SSLModes. Default "prefer".
	SSLMode string `yaml:"sslmode"`
}

// Server says where this instance listens for other instances.
type Server struct {
	// Hostname is the address to listen on. Default "0.0.0.0", every IPv4
	// interface.
	Hostname string `yaml:"hostname"`
	// Port is the TCP port to listen on. Default 3000.
	Port int `yaml:"port"`
	// AuthToken is the bearer token sources must send. Optional; cannot be
	// used together with AuthTokenFile. After Parse it holds the content of
	// AuthTokenFile when that was set.
	AuthToken string `yaml:"auth_token"`
	// AuthTokenFile is a file whose content, trailing newlines trimmed, is the
	// token. Optional; Parse reads it into AuthToken and then clears it.
	AuthTokenFile string `yaml:"auth_token_file"`
	// TLSCertFile is a PEM certificate (chain) file; when set, the server
	// speaks HTTPS. Optional; set both or neither with TLSKeyFile.
	TLSCertFile string `yaml:"tls_cert_file"`
	// TLSKeyFile is the PEM private key file for TLSCertFile.
	TLSKeyFile string `yaml:"tls_key_file"`
	// Sources lists the sources (their database.name) this instance takes
	// batches and loads from. Optional: when empty, a source is admitted
	// on first contact, by its first batch (sequence number 1) or an
	// initial load, and any other request naming an unknown source is
	// refused.
	Sources []string `yaml:"sources"`
	// IdleTimeout is how long a request may go without a byte arriving
	// before the server gives up on it, in milliseconds, so a batch on a
	// slow link takes as long as it takes while a dead one is dropped.
	// Default 60000 ms.
	IdleTimeout Millis `yaml:"idle_timeout"`
	// MaxChunkMiB is the most JSON one chunk of a batch may expand to, in
	// MiB; a chunk over it is refused (413) while it is being read. A source
	// closes a chunk at 8 MiB, plus at most one event (1,000 rows or about
	// 4 MiB of them, or a single row of any size): raise it only for rows
	// larger than it. Default 32, at least 16.
	MaxChunkMiB int `yaml:"max_chunk_mib"`
}

// Addr returns the host:port to listen on, IPv6 addresses bracketed.
func (s Server) Addr() string {
	return net.JoinHostPort(s.Hostname, strconv.Itoa(s.Port))
}

// Target says what to replicate to one target instance and how to reach it.
type Target struct {
	// TargetExpression selects the replicated tables: "schema.table", split
	// at the first dot, each part a path.Match pattern ("*" matches any run of
	// characters but '/'), such as "public.*", "*.*" or "sales.order_*".
	// Required.
	TargetExpression string `yaml:"target_expression"`
	// Endpoint is where the target instance's server listens.
	Endpoint Endpoint `yaml:"endpoint"`
	// ApplySchema is the schema the data is applied into on the target.
	// Optional: empty keeps the source's schema names.
	ApplySchema string `yaml:"apply_schema"`
	// AuthToken is the bearer token sent to the target, matching its
	// server.auth_token. Optional; cannot be used together with
	// AuthTokenFile. After Parse it holds the content of AuthTokenFile when
	// that was set.
	AuthToken string `yaml:"auth_token"`
	// AuthTokenFile is a file whose content, trailing newlines trimmed, is the
	// token. Optional; Parse reads it into AuthToken and then clears it.
	AuthTokenFile string `yaml:"auth_token_file"`
}

// Endpoint is the address of a target instance's server.
type Endpoint struct {
	// Hostname is the target's host name or IP address, without scheme or
	// port. Required.
	Hostname string `yaml:"hostname"`
	// Port is the target's server port, 1 to 65535. Required.
	Port int `yaml:"port"`
	// TLS makes the transmitter use HTTPS. Default false.
	TLS bool `yaml:"tls"`
	// CAFile is a PEM bundle of the CAs to trust for HTTPS instead of the
	// system's. Optional, and only with TLS.
	CAFile string `yaml:"ca_file"`
	// IdleTimeout is how long a request to the target may go without a
	// byte moving either way before it is abandoned and retried, in
	// milliseconds: a chunk takes as long as the link needs, and a link
	// that stops moving (a blackhole) is noticed within this time.
	// Default 30000 ms.
	IdleTimeout Millis `yaml:"idle_timeout"`
}

// DefaultIdleTimeout is an endpoint's idle_timeout when the key is left out.
const DefaultIdleTimeout = 30 * time.Second

// Idle returns the endpoint's idle_timeout, DefaultIdleTimeout when unset.
func (e Endpoint) Idle() time.Duration {
	if e.IdleTimeout == 0 {
		return DefaultIdleTimeout
	}
	return e.IdleTimeout.Duration()
}

// URL returns the base URL of the endpoint, "http://host:port" or
// "https://host:port", with IPv6 addresses bracketed and no trailing slash.
func (e Endpoint) URL() string {
	u := url.URL{Scheme: "http", Host: net.JoinHostPort(e.Hostname, strconv.Itoa(e.Port))}
	if e.TLS {
		u.Scheme = "https"
	}
	return u.String()
}

// Default returns the configuration used for every key a file leaves out.
// Its Database.Name is empty, so it does not Validate as is, and it has no
// Targets.
func Default() Config {
	return Config{
		BatchSize:         10000,
		MaxEventsPerBatch: 10000,
		UseEventTriggers:  false,
		ProcessingIntervals: Intervals{
			Batcher:     100,
			Transmitter: 100,
			Applier:     100,
			Vacuum:      500,
			DDLWatcher:  5000,
		},
		Database: Database{
			Database: "postgres",
			Hostname: "localhost",
			Username: "teleport",
			Port:     5432,
			SSLMode:  "prefer",
		},
		Server: Server{
			Hostname:    "0.0.0.0",
			Port:        3000,
			IdleTimeout: 60000,
			MaxChunkMiB: 32,
		},
	}
}

// HasTargets reports whether this instance is a source, that is whether it
// replicates to at least one target.
func (c Config) HasTargets() bool {
	return len(c.Targets) > 0
}
