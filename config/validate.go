package config

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"regexp"
	"slices"
	"strings"
)

// problem is one thing wrong with a configuration, at one YAML key path.
type problem struct {
	key string // e.g. "targets.my-target.endpoint.port"; "" for the whole file
	msg string
}

func (p problem) Error() string {
	if p.key == "" {
		return p.msg
	}
	return p.key + ": " + p.msg
}

// Validate reports every problem of c at once, joined with errors.Join, one
// per line, each naming its YAML key path, the bad value and what is
// allowed. It does no I/O: files named by c are read by Parse, and checked
// again by whoever opens them.
func (c Config) Validate() error {
	var errs []error
	for _, p := range c.problems() {
		errs = append(errs, p)
	}
	return errors.Join(errs...)
}

// nameRule is what a name must look like, in the words of the messages.
const nameRule = "1 to 63 letters, digits, '_', '.' or '-', starting with a letter or digit"

var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

// CheckName says why name cannot be an instance's database.name, or returns
// nil: a target checks the names sources give with it.
func CheckName(name string) error {
	if validName.MatchString(name) {
		return nil
	}
	if len(name) > 80 {
		return fmt.Errorf("a name of %d bytes is not a valid instance name: use %s", len(name), nameRule)
	}
	return fmt.Errorf("%q is not a valid instance name: use %s", name, nameRule)
}

// Bounds of the transport settings: an idle timeout shorter than a
// database's pause would drop working requests; a source's chunk holds up
// to 8 MiB and one event (see Server.MaxChunkMiB).
const (
	minIdle     = 100
	minChunkMiB = 16
	maxChunkMiB = 1024
)

// maxIdentifier is PostgreSQL's limit on an identifier's length, in bytes.
const maxIdentifier = 63

func (c Config) problems() []problem {
	var ps []problem
	add := func(key, format string, args ...any) {
		ps = append(ps, problem{key, fmt.Sprintf(format, args...)})
	}

	if c.BatchSize <= 0 {
		add("batch_size", "must be > 0 events, got %d", c.BatchSize)
	}
	if c.MaxEventsPerBatch <= 0 {
		add("max_events_per_batch", "must be > 0 events, got %d", c.MaxEventsPerBatch)
	}
	iv := c.ProcessingIntervals
	for _, i := range []struct {
		key string
		ms  Millis
	}{
		{"batcher", iv.Batcher},
		{"transmitter", iv.Transmitter},
		{"applier", iv.Applier},
		{"vacuum", iv.Vacuum},
		{"ddlwatcher", iv.DDLWatcher},
	} {
		if i.ms <= 0 {
			add("processing_intervals."+i.key, "must be > 0 milliseconds, got %d", i.ms)
		}
	}

	db := c.Database
	switch {
	case db.Name == "":
		add("database.name", "required: this instance's name, %s", nameRule)
	case !validName.MatchString(db.Name):
		add("database.name", "%q is not a valid name: use %s", db.Name, nameRule)
	}
	for _, f := range []struct{ key, value, def string }{
		{"database.database", db.Database, "postgres"},
		{"database.hostname", db.Hostname, "localhost"},
		{"database.username", db.Username, "teleport"},
	} {
		if f.value == "" {
			add(f.key, "must not be empty (leave the key out for the default, %q)", f.def)
		}
	}
	checkPort(add, "database.port", db.Port)
	if !slices.Contains(SSLModes, db.SSLMode) {
		add("database.sslmode", "%q is not allowed: use one of %s", db.SSLMode, strings.Join(SSLModes, ", "))
	}
	checkExclusive(add, "database.password", db.Password, "database.password_file", db.PasswordFile)

	srv := c.Server
	if srv.Hostname != "" {
		checkHost(add, "server.hostname", srv.Hostname)
	}
	checkPort(add, "server.port", srv.Port)
	checkExclusive(add, "server.auth_token", srv.AuthToken, "server.auth_token_file", srv.AuthTokenFile)
	switch {
	case srv.TLSCertFile != "" && srv.TLSKeyFile == "":
		add("server.tls_key_file", "required when server.tls_cert_file is set (set both or neither)")
	case srv.TLSCertFile == "" && srv.TLSKeyFile != "":
		add("server.tls_cert_file", "required when server.tls_key_file is set (set both or neither)")
	}

	if srv.IdleTimeout < minIdle {
		add("server.idle_timeout", "must be at least %d milliseconds, got %d", minIdle, srv.IdleTimeout)
	}
	if srv.MaxChunkMiB < minChunkMiB || srv.MaxChunkMiB > maxChunkMiB {
		add("server.max_chunk_mib", "must be from %d to %d MiB, got %d", minChunkMiB, maxChunkMiB, srv.MaxChunkMiB)
	}
	for i, name := range srv.Sources {
		if err := CheckName(name); err != nil {
			add(fmt.Sprintf("server.sources[%d]", i), "%v: list the database.name of each source", err)
		}
	}

	mapped := "" // the source schema of the first target with an apply_schema
	for _, name := range slices.Sorted(maps.Keys(c.Targets)) {
		t := c.Targets[name]
		key := "targets." + name
		if !validName.MatchString(name) {
			add(key, "%q is not a valid target name: use %s, the target's database.name", name, nameRule)
		}
		if _, err := ParseExpression(t.TargetExpression); err != nil {
			add(key+".target_expression", "%v", err)
		}
		if t.Endpoint.Hostname == "" {
			add(key+".endpoint.hostname", "required: the target instance's host name or IP address")
		} else {
			checkHost(add, key+".endpoint.hostname", t.Endpoint.Hostname)
		}
		checkPort(add, key+".endpoint.port", t.Endpoint.Port)
		if t.Endpoint.IdleTimeout != 0 && t.Endpoint.IdleTimeout < minIdle {
			add(key+".endpoint.idle_timeout", "must be at least %d milliseconds, got %d", minIdle, t.Endpoint.IdleTimeout)
		}
		if t.Endpoint.CAFile != "" && !t.Endpoint.TLS {
			add(key+".endpoint.ca_file", "only used with https: set %s.endpoint.tls: true or remove it", key)
		}
		switch {
		case len(t.ApplySchema) > maxIdentifier:
			add(key+".apply_schema", "is %d bytes long, more than PostgreSQL's limit of %d", len(t.ApplySchema), maxIdentifier)
		case strings.IndexByte(t.ApplySchema, 0) >= 0:
			add(key+".apply_schema", "must not contain a NUL byte")
		case t.ApplySchema != "":
			expr := t.Expression()
			schema := expr.Schema
			switch {
			case !expr.NamesOneSchema():
				add(key+".apply_schema", "maps one source schema into %q, but target_expression %q matches schemas by pattern: name one schema, as in \"public.*\"", t.ApplySchema, t.TargetExpression)
			case mapped != "" && schema != mapped:
				add(key+".apply_schema", "targets with an apply_schema must all replicate the same source schema: this one replicates %q, another %q", schema, mapped)
			default:
				mapped = schema
			}
		}
		checkExclusive(add, key+".auth_token", t.AuthToken, key+".auth_token_file", t.AuthTokenFile)
	}
	return ps
}

type addFunc func(key, format string, args ...any)

func checkPort(add addFunc, key string, port int) {
	if port < 1 || port > 65535 {
		add(key, "must be between 1 and 65535, got %d", port)
	}
}

// checkExclusive reports when both a secret and the file holding it are set.
// It never prints the secret.
func checkExclusive(add addFunc, valueKey, value, fileKey, file string) {
	if value != "" && file != "" {
		add(fileKey, "cannot be set together with %s: set one of them", valueKey)
	}
}

// checkHost reports a host that is not a bare host name or IP address, the
// usual mistake being a URL or host:port.
func checkHost(add addFunc, key, host string) {
	switch {
	case strings.ContainsAny(host, "/ "):
		add(key, "%q must be a host name or IP address, without scheme or path", host)
	case strings.Contains(host, ":"):
		if _, err := netip.ParseAddr(host); err != nil {
			add(key, "%q must be a host name or IP address, without port (set the port key) or brackets", host)
		}
	}
}
