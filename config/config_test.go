package config_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pagarme/teleport/config"
)

func TestLoad_upstreamExamples(t *testing.T) {
	t.Parallel()

	source := config.Default()
	source.Database = config.Database{
		Name:     "finops-db",
		Database: "postgres",
		Hostname: "postgres.mydomain.com",
		Username: "teleport",
		Password: "root",
		Port:     5432,
		SSLMode:  "prefer", // not in the file: the default
	}
	source.Targets = map[string]config.Target{
		"my-target": {
			TargetExpression: "public.*",
			Endpoint:         config.Endpoint{Hostname: "target.mydomain.com", Port: 3001},
			ApplySchema:      "test",
		},
	}

	target := config.Default()
	target.Database = config.Database{
		Name:     "my-target",
		Database: "postgres",
		Hostname: "postgres-replica.mydomain.com",
		Username: "teleport",
		Password: "root",
		Port:     5432,
		SSLMode:  "prefer",
	}
	target.Server.Hostname, target.Server.Port = "target.mydomain.com", 3001

	tests := []struct {
		file string
		want config.Config
	}{
		{"testdata/source_config.yml", source},
		{"testdata/target_config.yml", target},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			got, err := config.Load(tt.file)
			if err != nil {
				t.Fatalf("Load(%q): %v", tt.file, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Load(%q) =\n%+v\nwant\n%+v", tt.file, got, tt.want)
			}
		})
	}
}

func TestLoad_upstreamExampleFields(t *testing.T) {
	t.Parallel()
	src, err := config.Load("testdata/source_config.yml")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got, want := src.BatchSize, 10000; got != want {
		t.Errorf("BatchSize = %d, want %d", got, want)
	}
	if got, want := src.ProcessingIntervals.DDLWatcher.Duration(), 5*time.Second; got != want {
		t.Errorf("ProcessingIntervals.DDLWatcher.Duration() = %s, want %s", got, want)
	}
	if got, want := src.ProcessingIntervals.Vacuum.Duration(), 500*time.Millisecond; got != want {
		t.Errorf("ProcessingIntervals.Vacuum.Duration() = %s, want %s", got, want)
	}
	if !src.HasTargets() {
		t.Errorf("source HasTargets() = false, want true")
	}
	tg := src.Targets["my-target"]
	if got, want := tg.Endpoint.URL(), "http://target.mydomain.com:3001"; got != want {
		t.Errorf("my-target Endpoint.URL() = %q, want %q", got, want)
	}
	if !tg.Match("public", "users") || tg.Match("private", "users") {
		t.Errorf("my-target Match(public, users), Match(private, users) = %v, %v, want true, false",
			tg.Match("public", "users"), tg.Match("private", "users"))
	}

	dst, err := config.Load("testdata/target_config.yml")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if dst.HasTargets() {
		t.Errorf("target HasTargets() = true, want false")
	}
	if got, want := dst.Server.Addr(), "target.mydomain.com:3001"; got != want {
		t.Errorf("target Server.Addr() = %q, want %q", got, want)
	}
}

func TestParse_defaults(t *testing.T) {
	t.Parallel()
	want := config.Default()
	want.Database.Name = "x"

	tests := []struct {
		name string
		yaml string
	}{
		{"only database.name", "database:\n  name: x\n"},
		{"flow style", "database: {name: x}\n"},
		{"keys with empty values keep their defaults", "batch_size:\nprocessing_intervals:\ndatabase:\n  name: x\n  port:\n  hostname: ~\nserver:\ntargets:\n"},
		{"comments and a document marker", "---\n# the instance\ndatabase:\n  name: x # inline\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := config.Parse([]byte(tt.yaml))
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.yaml, err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Parse(%q) =\n%+v\nwant\n%+v", tt.yaml, got, want)
			}
		})
	}
}

func TestDefault(t *testing.T) {
	t.Parallel()
	d := config.Default()
	tests := []struct {
		name      string
		got, want any
	}{
		{"batch_size", d.BatchSize, 10000},
		{"max_events_per_batch", d.MaxEventsPerBatch, 10000},
		{"use_event_triggers", d.UseEventTriggers, false},
		{"batcher", d.ProcessingIntervals.Batcher.Duration(), 100 * time.Millisecond},
		{"transmitter", d.ProcessingIntervals.Transmitter.Duration(), 100 * time.Millisecond},
		{"applier", d.ProcessingIntervals.Applier.Duration(), 100 * time.Millisecond},
		{"vacuum", d.ProcessingIntervals.Vacuum.Duration(), 500 * time.Millisecond},
		{"ddlwatcher", d.ProcessingIntervals.DDLWatcher.Duration(), 5 * time.Second},
		{"database.database", d.Database.Database, "postgres"},
		{"database.hostname", d.Database.Hostname, "localhost"},
		{"database.username", d.Database.Username, "teleport"},
		{"database.port", d.Database.Port, 5432},
		{"database.sslmode", d.Database.SSLMode, "prefer"},
		{"server.hostname", d.Server.Hostname, "0.0.0.0"},
		{"server.port", d.Server.Port, 3000},
		{"targets", d.Targets == nil, true},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("Default() %s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}

	// Default lacks only a name to be valid.
	if err := d.Validate(); err == nil || !strings.Contains(err.Error(), "database.name: required") {
		t.Errorf("Default().Validate() = %v, want database.name required", err)
	}
	d.Database.Name = "x"
	if err := d.Validate(); err != nil {
		t.Errorf("Default() with a name: Validate() = %v, want nil", err)
	}
}

// valid is a minimal valid source config for tests to extend.
const valid = `database:
  name: src
targets:
  t:
    target_expression: "public.*"
    endpoint:
      hostname: target.example.com
      port: 3001
`

func TestLoad_errors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		yaml string   // written to a file; {dir} is replaced by a temporary directory
		want []string // substrings of the error, one per expected line
	}{
		{"empty file", "", []string{"config file is empty"}},
		{"only blanks", "  \n\n", []string{"config file is empty"}},
		{"only comments", "# to do\n", []string{"config file is empty"}},
		{"a list, not a mapping", "- database\n", []string{"the file must be a mapping of keys to values, such as batch_size: 10000, not a list"}},
		{"invalid YAML", "database:\n  name: [x\n", []string{"invalid YAML"}},
		{"key indented too little", "database:\n  name: x\n port: 5\n", []string{"line 3: invalid YAML: did not find expected key"}},
		{"key indented too much", "database:\n  name: x\n    port: 5\n", []string{"line 3: invalid YAML: mapping values are not allowed in this context"}},
		{"tab indentation", "database:\n\tname: x\n", []string{"line 2: invalid YAML: found character that cannot start any token (indent with spaces"}},
		{
			"unknown top-level key",
			"batchsize: 5\ndatabase:\n  name: x\n",
			[]string{`line 1: batchsize: unknown key, did you mean "batch_size"? (allowed at the top level: batch_size, max_events_per_batch,`},
		},
		{
			"unknown key in a section",
			"database:\n  name: x\n  passwd: y\n",
			[]string{`line 3: database.passwd: unknown key, did you mean "password"? (allowed in database: name, database, hostname,`},
		},
		{
			"unknown key in a target",
			valid + "      prot: 3\n",
			[]string{`line 9: targets.t.endpoint.prot: unknown key, did you mean "port"? (allowed in targets.t.endpoint: hostname, port, tls, ca_file, idle_timeout)`},
		},
		{
			"unknown key without a close match",
			"database:\n  name: x\nreplication_slot: s\n",
			[]string{`line 3: replication_slot: unknown key (allowed at the top level:`},
		},
		{"duplicate key", "database:\n  name: x\n  name: y\n", []string{"line 3: database.name: key set twice"}},
		{"duplicate target", valid + "  t:\n    target_expression: a.b\n", []string{`line 10: targets: target "t" is defined twice`}},
		{"port is text", "database:\n  name: x\n  port: \"abc\"\n", []string{`line 3: database.port: want a whole number, got text "abc"`}},
		{"batch_size is a word", "batch_size: many\ndatabase:\n  name: x\n", []string{`line 1: batch_size: want a whole number, got text "many"`}},
		{"interval is a list", "processing_intervals:\n  vacuum: [1]\ndatabase:\n  name: x\n", []string{"line 2: processing_intervals.vacuum: want a whole number of milliseconds, got a list"}},
		{"section is a number", "database: 5\n", []string{"line 1: database: want a mapping of keys to values, got the number 5"}},
		{"boolean in quotes", "use_event_triggers: \"true\"\ndatabase:\n  name: x\n", []string{`line 1: use_event_triggers: want true or false, got text "true"`}},
		{"fractional port", "database:\n  name: x\n  port: 54.32\n", []string{"database.port: want a whole number, got 54.32"}},
		{"database port 0", "database:\n  name: x\n  port: 0\n", []string{"database.port: must be between 1 and 65535, got 0"}},
		{"server port 70000", "database:\n  name: x\nserver:\n  port: 70000\n", []string{"server.port: must be between 1 and 65535, got 70000"}},
		{"endpoint port missing", strings.Replace(valid, "      port: 3001\n", "", 1), []string{"targets.t.endpoint.port: must be between 1 and 65535, got 0"}},
		{"interval 0", "processing_intervals:\n  vacuum: 0\ndatabase:\n  name: x\n", []string{"processing_intervals.vacuum: must be > 0 milliseconds, got 0"}},
		{"negative interval", "processing_intervals:\n  ddlwatcher: -5\ndatabase:\n  name: x\n", []string{"processing_intervals.ddlwatcher: must be > 0 milliseconds, got -5"}},
		{"batch_size 0", "batch_size: 0\ndatabase:\n  name: x\n", []string{"batch_size: must be > 0 events, got 0"}},
		{"max_events_per_batch negative", "max_events_per_batch: -1\ndatabase:\n  name: x\n", []string{"max_events_per_batch: must be > 0 events, got -1"}},
		{"database.name missing", "database:\n  hostname: db\n", []string{"database.name: required"}},
		{"database.name invalid", "database:\n  name: -x\n", []string{`database.name: "-x" is not a valid name: use 1 to 63 letters`}},
		{"database.hostname empty", "database:\n  name: x\n  hostname: \"\"\n", []string{`database.hostname: must not be empty (leave the key out for the default, "localhost")`}},
		{"bad sslmode", "database:\n  name: x\n  sslmode: required\n", []string{`database.sslmode: "required" is not allowed: use one of disable, allow, prefer, require, verify-ca, verify-full`}},
		{"expression without dot", strings.Replace(valid, `"public.*"`, "public", 1), []string{`targets.t.target_expression: "public" has no dot: want "schema.table"`}},
		{"expression with empty table", strings.Replace(valid, `"public.*"`, "public.", 1), []string{`targets.t.target_expression: "public." has an empty table part`}},
		{"expression with empty schema", strings.Replace(valid, `"public.*"`, ".users", 1), []string{`targets.t.target_expression: ".users" has an empty schema part`}},
		{"expression with bad pattern", strings.Replace(valid, `"public.*"`, `"public.["`, 1), []string{`targets.t.target_expression: "public.[": table part "[" is not a valid pattern`}},
		{"expression missing", strings.Replace(valid, `    target_expression: "public.*"`+"\n", "", 1), []string{"targets.t.target_expression: required"}},
		{"bad target name", strings.Replace(valid, "  t:", "  my target:", 1), []string{`targets.my target: "my target" is not a valid target name`}},
		{"endpoint hostname missing", strings.Replace(valid, "      hostname: target.example.com\n", "", 1), []string{"targets.t.endpoint.hostname: required"}},
		{"endpoint hostname is a URL", strings.Replace(valid, "target.example.com", "http://target.example.com", 1), []string{`targets.t.endpoint.hostname: "http://target.example.com" must be a host name or IP address, without scheme`}},
		{"endpoint hostname has a port", strings.Replace(valid, "target.example.com", "target.example.com:3001", 1), []string{`targets.t.endpoint.hostname: "target.example.com:3001" must be a host name or IP address, without port`}},
		{"ca_file without tls", valid + "      ca_file: ca.pem\n", []string{"targets.t.endpoint.ca_file: only used with https"}},
		{"apply_schema with a schema pattern", strings.Replace(valid, `"public.*"`, `"app_*.*"`, 1) + "    apply_schema: replica\n", []string{`targets.t.apply_schema: maps one source schema into "replica", but target_expression "app_*.*" matches schemas by pattern`}},
		{"apply_schema too long", valid + "    apply_schema: " + strings.Repeat("s", 64) + "\n", []string{"targets.t.apply_schema: is 64 bytes long, more than PostgreSQL's limit of 63"}},
		{"server idle_timeout too short", "database:\n  name: x\nserver:\n  idle_timeout: 10\n", []string{"server.idle_timeout: must be at least 100 milliseconds, got 10"}},
		{"endpoint idle_timeout negative", valid + "      idle_timeout: -1\n", []string{"targets.t.endpoint.idle_timeout: must be at least 100 milliseconds, got -1"}},
		{"max_chunk_mib too small", "database:\n  name: x\nserver:\n  max_chunk_mib: 4\n", []string{"server.max_chunk_mib: must be from 16 to 1024 MiB, got 4"}},
		{"bad name in server.sources", "database:\n  name: x\nserver:\n  sources: [ok, \"bad name\"]\n", []string{`server.sources[1]: "bad name" is not a valid instance name`}},
		{"tls cert without key", "database:\n  name: x\nserver:\n  tls_cert_file: cert.pem\n", []string{"server.tls_key_file: required when server.tls_cert_file is set"}},
		{"tls key without cert", "database:\n  name: x\nserver:\n  tls_key_file: key.pem\n", []string{"server.tls_cert_file: required when server.tls_key_file is set"}},
		{"unset variable", "database:\n  name: x\n  password: ${TELEPORT_CONFIG_TEST_NEVER_SET}\n", []string{"database.password: environment variable TELEPORT_CONFIG_TEST_NEVER_SET is not set"}},
		{"unterminated variable", "database:\n  name: x\n  hostname: ${PGHOST\n", []string{`database.hostname: "${" without a closing "}"`}},
		{"invalid variable name", "database:\n  name: x\n  hostname: ${1X}\n", []string{`database.hostname: "${...}" must hold an environment variable name`}},
		{"password and password_file", "database:\n  name: x\n  password: a\n  password_file: {dir}/pw\n", []string{"database.password_file: cannot be set together with database.password"}},
		{"auth_token and auth_token_file", valid + "    auth_token: a\n    auth_token_file: {dir}/tok\n", []string{"targets.t.auth_token_file: cannot be set together with targets.t.auth_token"}},
		{"missing password_file", "database:\n  name: x\n  password_file: {dir}/nope\n", []string{`database.password_file: read "{dir}/nope": no such file or directory`}},
		{"unreadable password_file", "database:\n  name: x\n  password_file: {dir}\n", []string{`database.password_file: read "{dir}": is a directory`}},
		{"empty auth_token_file", "database:\n  name: x\nserver:\n  auth_token_file: {dir}/empty\n", []string{`server.auth_token_file: file "{dir}/empty" is empty`}},
		{
			"several problems at once",
			`batch_size: 0
processing_intervals:
  vacuum: 0
database:
  port: 70000
  sslmode: sometimes
  password: ${TELEPORT_CONFIG_TEST_NEVER_SET}
targets:
  t:
    target_expression: public
    endpoint:
      hostname: target.example.com
`,
			[]string{
				"batch_size: must be > 0",
				"processing_intervals.vacuum: must be > 0",
				"database.name: required",
				"database.port: must be between 1 and 65535, got 70000",
				`database.sslmode: "sometimes" is not allowed`,
				"database.password: environment variable TELEPORT_CONFIG_TEST_NEVER_SET is not set",
				`targets.t.target_expression: "public" has no dot`,
				"targets.t.endpoint.port: must be between 1 and 65535, got 0",
			},
		},
		{
			"several YAML problems at once",
			"batchsize: 1\ndatabase:\n  name: x\n  port: abc\n  hostnme: h\n",
			[]string{"line 1: batchsize: unknown key", `line 4: database.port: want a whole number, got text "abc"`, "line 5: database.hostnme: unknown key"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "empty"), []byte("\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(dir, "teleport.yml")
			if err := os.WriteFile(file, []byte(strings.ReplaceAll(tt.yaml, "{dir}", dir)), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := config.Load(file)
			if err == nil {
				t.Fatalf("Load(%q) = nil error, want %q", tt.yaml, tt.want)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.want) {
				t.Errorf("Load(%q) = %d problems, want %d:\n%v", tt.yaml, len(lines), len(tt.want), err)
			}
			for _, w := range tt.want {
				if w = strings.ReplaceAll(w, "{dir}", dir); !strings.Contains(err.Error(), w) {
					t.Errorf("Load(%q) = %v\nwant it to contain %q", tt.yaml, err, w)
				}
			}
			for _, l := range lines {
				if !strings.HasPrefix(l, file+": ") {
					t.Errorf("Load error line %q does not start with the file's path", l)
				}
			}
		})
	}
}

func TestLoad_missingFile(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "source_config.yml")
	_, err := config.Load(file)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load(%q) = %v, want an error wrapping fs.ErrNotExist", file, err)
	}
	if got, want := err.Error(), file+": no such configuration file: give its path with -config PATH"; !strings.HasPrefix(got, want) {
		t.Errorf("Load(%q) = %q, want it to start with %q", file, got, want)
	}
}

func TestParse_expandsVariables(t *testing.T) {
	// Not parallel: t.Setenv.
	t.Setenv("TELEPORT_TEST_PW", "s3cr$t")
	t.Setenv("TELEPORT_TEST_HOST", "db.example.com")
	t.Setenv("TELEPORT_TEST_EMPTY", "")
	t.Setenv("TELEPORT_TEST_YAML", "x\nport: 1\n  - [")
	tests := []struct {
		value string // YAML single-quoted value of database.password
		want  string
	}{
		{"${TELEPORT_TEST_PW}", "s3cr$t"},
		{"a${TELEPORT_TEST_PW}b${TELEPORT_TEST_PW}", "as3cr$tbs3cr$t"},
		{"${TELEPORT_TEST_EMPTY}", ""},
		{"$$", "$"},
		{"$${TELEPORT_TEST_PW}", "${TELEPORT_TEST_PW}"},
		{"pa$word$", "pa$word$"},
		{"$TELEPORT_TEST_PW", "$TELEPORT_TEST_PW"},
		{"${TELEPORT_TEST_YAML}", "x\nport: 1\n  - ["},
		{"no variables", "no variables"},
	}
	for _, tt := range tests {
		yml := "database:\n  name: x\n  password: '" + tt.value + "'\n"
		got, err := config.Parse([]byte(yml))
		if err != nil {
			t.Errorf("Parse(password: %q): %v", tt.value, err)
			continue
		}
		if got.Database.Password != tt.want {
			t.Errorf("Parse(password: %q) Database.Password = %q, want %q", tt.value, got.Database.Password, tt.want)
		}
	}

	// Every string field is expanded, inside targets too.
	yml := strings.NewReplacer(
		"target.example.com", "${TELEPORT_TEST_HOST}",
		"name: src", "name: src\n  hostname: ${TELEPORT_TEST_HOST}",
	).Replace(valid)
	got, err := config.Parse([]byte(yml))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if got.Database.Hostname != "db.example.com" || got.Targets["t"].Endpoint.Hostname != "db.example.com" {
		t.Errorf("Parse(%q) hostnames = %q, %q, want db.example.com twice", yml, got.Database.Hostname, got.Targets["t"].Endpoint.Hostname)
	}
}

func TestParse_secretFiles(t *testing.T) {
	// Not parallel: t.Setenv.
	dir := t.TempDir()
	write := func(name, content string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("pw", "s3cret\n")
	srvTok := write("server_token", "server-token\r\n")
	tgtTok := write("target_token", "  target token  ")
	t.Setenv("TELEPORT_TEST_SECRETS", dir)

	// The password file's path comes from a variable: files are read after expansion.
	yml := strings.Replace(valid, "  name: src\n", "  name: src\n  password_file: ${TELEPORT_TEST_SECRETS}/pw\n", 1) +
		"    auth_token_file: " + tgtTok + "\n" +
		"server:\n  auth_token_file: " + srvTok + "\n"

	got, err := config.Parse([]byte(yml))
	if err != nil {
		t.Fatalf("Parse(%q): %v", yml, err)
	}
	tests := []struct {
		name      string
		got, want string
	}{
		{"database.password", got.Database.Password, "s3cret"},
		{"database.password_file", got.Database.PasswordFile, ""},
		{"server.auth_token", got.Server.AuthToken, "server-token"},
		{"server.auth_token_file", got.Server.AuthTokenFile, ""},
		{"targets.t.auth_token", got.Targets["t"].AuthToken, "  target token  "},
		{"targets.t.auth_token_file", got.Targets["t"].AuthTokenFile, ""},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("Parse with %s = %q, want %q", tt.name, tt.got, tt.want)
		}
	}
	// The parsed config validates on its own, as main may check it again.
	if err := got.Validate(); err != nil {
		t.Errorf("Validate() of the parsed config = %v, want nil", err)
	}
}

func TestTarget_Match(t *testing.T) {
	t.Parallel()
	tests := []struct {
		expr, schema, table string
		want                bool
	}{
		{"public.*", "public", "users", true},
		{"public.*", "public", "", true},
		{"public.*", "Public", "users", false},
		{"public.*", "private", "users", false},
		{"*.*", "any", "thing", true},
		{"sales.order_*", "sales", "order_items", true},
		{"sales.order_*", "sales", "orders", false},
		{"sales.order_?", "sales", "order_1", true},
		{"public.users", "public", "users", true},
		{"public.users", "public", "users_old", false},
		{"public.a.b", "public", "a.b", true}, // split at the first dot
		{"public.[ab]*", "public", "accounts", true},
		{"public.[ab]*", "public", "customers", false},
		{"My Schema.*", "My Schema", "t", true},
		{"public", "public", "users", false},
		{"public.[", "public", "[", false},
		{"", "public", "users", false},
	}
	for _, tt := range tests {
		tg := config.Target{TargetExpression: tt.expr}
		if got := tg.Match(tt.schema, tt.table); got != tt.want {
			t.Errorf("Target{TargetExpression: %q}.Match(%q, %q) = %v, want %v", tt.expr, tt.schema, tt.table, got, tt.want)
		}
	}
}

func TestEndpoint_URL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   config.Endpoint
		want string
	}{
		{config.Endpoint{Hostname: "target.example.com", Port: 3001}, "http://target.example.com:3001"},
		{config.Endpoint{Hostname: "target.example.com", Port: 443, TLS: true}, "https://target.example.com:443"},
		{config.Endpoint{Hostname: "10.0.0.1", Port: 3000}, "http://10.0.0.1:3000"},
		{config.Endpoint{Hostname: "::1", Port: 3000}, "http://[::1]:3000"},
		{config.Endpoint{Hostname: "fe80::1%eth0", Port: 3000, TLS: true}, "https://[fe80::1%25eth0]:3000"},
	}
	for _, tt := range tests {
		if got := tt.in.URL(); got != tt.want {
			t.Errorf("%+v.URL() = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestServer_Addr(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   config.Server
		want string
	}{
		{config.Default().Server, "0.0.0.0:3000"},
		{config.Server{Hostname: "::", Port: 3001}, "[::]:3001"},
		{config.Server{Port: 3002}, ":3002"},
	}
	for _, tt := range tests {
		if got := tt.in.Addr(); got != tt.want {
			t.Errorf("%+v.Addr() = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestConfig_HasTargets(t *testing.T) {
	t.Parallel()
	tests := []struct {
		targets map[string]config.Target
		want    bool
	}{
		{nil, false},
		{map[string]config.Target{}, false},
		{map[string]config.Target{"t": {}}, true},
	}
	for _, tt := range tests {
		c := config.Config{Targets: tt.targets}
		if got := c.HasTargets(); got != tt.want {
			t.Errorf("Config{Targets: %v}.HasTargets() = %v, want %v", tt.targets, got, tt.want)
		}
	}
}

func TestConfig_Validate(t *testing.T) {
	t.Parallel()
	good := config.Default()
	good.Database.Name = "src"
	good.Server.TLSCertFile, good.Server.TLSKeyFile = "cert.pem", "key.pem"
	good.Targets = map[string]config.Target{
		"dst": {
			TargetExpression: "public.*",
			Endpoint:         config.Endpoint{Hostname: "::1", Port: 3001, TLS: true, CAFile: "ca.pem"},
			ApplySchema:      "replica",
		},
	}
	if err := good.Validate(); err != nil {
		t.Errorf("Validate() = %v, want nil", err)
	}

	// Each problem is its own joined error, in a stable order.
	bad := good
	bad.ProcessingIntervals.Applier = 0
	bad.Database.SSLMode = ""
	bad.Targets = map[string]config.Target{
		"b": {TargetExpression: "x", Endpoint: config.Endpoint{Hostname: "h", Port: 1}},
		"a": {TargetExpression: "x.y", Endpoint: config.Endpoint{Port: 1}, ApplySchema: "a\x00b"},
	}
	err := bad.Validate()
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("Validate() = %v, want joined errors", err)
	}
	var got []string
	for _, e := range j.Unwrap() {
		key, _, _ := strings.Cut(e.Error(), ": ")
		got = append(got, key)
	}
	want := []string{
		"processing_intervals.applier",
		"database.sslmode",
		"targets.a.endpoint.hostname",
		"targets.a.apply_schema",
		"targets.b.target_expression",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Validate() keys = %q, want %q\n%v", got, want, err)
	}
}
