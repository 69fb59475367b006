// Command teleport replicates a PostgreSQL database, data and schema, to
// other PostgreSQL databases using only triggers and catalog reads: no
// superuser, no replication role, no logical decoding. One process runs per
// database host; see README.md.
package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pagarme/teleport/applier"
	"github.com/pagarme/teleport/batcher"
	"github.com/pagarme/teleport/config"
	"github.com/pagarme/teleport/database"
	"github.com/pagarme/teleport/database/capture"
	"github.com/pagarme/teleport/database/load"
	"github.com/pagarme/teleport/database/migrate"
	"github.com/pagarme/teleport/database/schema"
	"github.com/pagarme/teleport/database/store"
	"github.com/pagarme/teleport/ddlwatcher"
	"github.com/pagarme/teleport/server"
	"github.com/pagarme/teleport/server/wire"
	"github.com/pagarme/teleport/transmitter"
	"github.com/pagarme/teleport/vacuum"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp): // -h: the usage is printed
		os.Exit(0)
	case errors.As(err, new(unhealthy)), errors.As(err, new(mismatch)): // -mode status or verify printed why
		os.Exit(2)
	case errors.As(err, new(reported)):
		os.Exit(1)
	default:
		fmt.Fprintln(os.Stderr, "teleport:", err)
		os.Exit(1)
	}
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// reported is an error run has already written to stderr.
type reported struct{ error }

func (r reported) Unwrap() error { return r.error }

// report writes err to w as the log would, one line per problem (an
// errors.Join lists several): "teleport: problem" with -log-format text,
// a JSON object with -log-format json.
func report(o options, w io.Writer, err error) error {
	lines := strings.Split(err.Error(), "\n")
	if o.logFormat == "json" {
		log := slog.New(slog.NewJSONHandler(w, nil))
		for _, line := range lines {
			log.Error("teleport stopped", "err", line)
		}
	} else {
		for _, line := range lines {
			fmt.Fprintln(w, "teleport:", line)
		}
	}
	return reported{err}
}

// options are the command-line flags.
type options struct {
	configPath string
	mode       string
	loadTarget string
	source     string
	parallel   int
	chunkMB    int
	overwrite  bool
	json       bool
	maxLag     time.Duration
	target     string // -mode verify
	tables     string // -mode verify and initial-load: comma-separated
	force      bool
	enable     bool
	version    bool
	logFormat  string
	logLevel   string
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("teleport", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.configPath, "config", "config.yml", "path of the YAML configuration file")
	fs.StringVar(&o.mode, "mode", "replication", "replication: run the instance; initial-load: copy existing data to -load-target; "+
		"status: print the replication state (exit status 2 when a batch is held or a lag is over -max-lag); "+
		"verify: compare the tables of -target with this source, exactly, while writes go on (exit status 2 when one differs); "+
		"uninstall: remove Teleport from the database (with -source NAME, on a target: only that source)")
	fs.StringVar(&o.loadTarget, "load-target", "", "target to load in -mode initial-load (a name under targets:)")
	fs.StringVar(&o.source, "source", "", "source to remove in -mode uninstall (its database.name)")
	fs.IntVar(&o.parallel, "parallel", 4, "in -mode initial-load: tables copied at once; in -mode verify: connections that hash a long table at once")
	fs.IntVar(&o.chunkMB, "chunk-mb", 1024, "in -mode initial-load: a table with a one-column integer primary key is copied in chunks of about this many MiB "+
		"on disk, several at once, when it has at least two; 0 copies every table whole")
	fs.BoolVar(&o.overwrite, "overwrite", false, "in -mode initial-load: empty and reload tables the target already has rows in")
	fs.BoolVar(&o.force, "force", false, "in -mode uninstall: remove Teleport even while replication has not finished (what is in flight is lost)")
	fs.BoolVar(&o.enable, "enable-triggers", false, "in -mode uninstall, on a target: enable the triggers replication created disabled")
	fs.BoolVar(&o.json, "json", false, "in -mode status and verify: print JSON")
	fs.StringVar(&o.target, "target", "", "in -mode verify: the target to compare with (a name under targets:)")
	fs.StringVar(&o.tables, "tables", "", "in -mode verify: compare only these tables; in -mode initial-load: copy only these tables again, "+
		"with the tables linked to them by foreign keys, while replication goes on (schema.table or table, comma-separated)")
	fs.DurationVar(&o.maxLag, "max-lag", time.Minute, "in -mode status: the lag beyond which replication is not healthy")
	fs.BoolVar(&o.version, "version", false, "print the version and exit")
	fs.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return o, err
		}
		return o, reported{err} // fs printed it, and the usage
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q: every option is a flag, see teleport -h", fs.Arg(0))
	}
	var errs []error
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "chunk-mb" && o.mode != "initial-load" {
			errs = append(errs, fmt.Errorf("-chunk-mb is only used with -mode initial-load"))
		}
	})
	switch o.mode {
	case "replication":
		if o.loadTarget != "" || o.overwrite {
			errs = append(errs, fmt.Errorf("-load-target and -overwrite are only used with -mode initial-load"))
		}
	case "initial-load":
		if o.loadTarget == "" {
			errs = append(errs, fmt.Errorf("-mode initial-load needs -load-target NAME, a target of the config file"))
		}
		if o.tables != "" && o.overwrite {
			errs = append(errs, fmt.Errorf("-overwrite is not used with -tables: a resync always replaces the tables it copies"))
		}
	case "uninstall":
		if o.source != "" && (o.force || o.enable) {
			errs = append(errs, fmt.Errorf("-force and -enable-triggers remove Teleport altogether: not with -source"))
		}
	case "status":
		if o.maxLag <= 0 {
			errs = append(errs, fmt.Errorf("-max-lag %v: must be above 0", o.maxLag))
		}
	case "verify":
		if o.target == "" {
			errs = append(errs, fmt.Errorf("-mode verify needs -target NAME, a target of the config file"))
		}
	default:
		errs = append(errs, fmt.Errorf("-mode %q: must be replication, initial-load, status, verify or uninstall", o.mode))
	}
	if o.mode != "status" && o.maxLag != time.Minute {
		errs = append(errs, fmt.Errorf("-max-lag is only used with -mode status"))
	}
	if o.mode != "status" && o.mode != "verify" && o.json {
		errs = append(errs, fmt.Errorf("-json is only used with -mode status and verify"))
	}
	if o.mode != "verify" && o.target != "" {
		errs = append(errs, fmt.Errorf("-target is only used with -mode verify (-mode initial-load names its target with -load-target)"))
	}
	if o.mode != "verify" && o.mode != "initial-load" && o.tables != "" {
		errs = append(errs, fmt.Errorf("-tables is only used with -mode verify and initial-load"))
	}
	if (o.source != "" || o.force || o.enable) && o.mode != "uninstall" {
		errs = append(errs, fmt.Errorf("-source, -force and -enable-triggers are only used with -mode uninstall"))
	}
	if o.parallel < 1 || o.parallel > 64 {
		errs = append(errs, fmt.Errorf("-parallel %d: must be 1 to 64", o.parallel))
	}
	if o.chunkMB < 0 || o.chunkMB > 1<<20 {
		errs = append(errs, fmt.Errorf("-chunk-mb %d: must be 0 (no chunks) to 1048576", o.chunkMB))
	}
	if o.logFormat != "text" && o.logFormat != "json" {
		errs = append(errs, fmt.Errorf("-log-format %q: must be text or json", o.logFormat))
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(o.logLevel)); err != nil {
		errs = append(errs, fmt.Errorf("-log-level %q: must be debug, info, warn or error", o.logLevel))
	}
	return o, errors.Join(errs...)
}

func newLogger(o options, w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(o.logLevel)) // checked by parseFlags
	ho := &slog.HandlerOptions{Level: lvl}
	var h slog.Handler = slog.NewTextHandler(w, ho)
	if o.logFormat == "json" {
		h = slog.NewJSONHandler(w, ho)
	}
	return slog.New(newRepeatHandler(h, repeatEvery, time.Now))
}

// runner is a long-lived part of the instance: a worker loop or the server.
type runner interface {
	Run(ctx context.Context) error
}

// run is the whole program but for the exit code, so tests can run an
// instance in-process and stop it by cancelling ctx. Logs go to stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	switch {
	case errors.Is(err, flag.ErrHelp), errors.As(err, new(reported)):
		return err
	case err != nil:
		return report(options{}, stderr, err)
	}
	if o.version {
		fmt.Fprintln(stdout, "teleport", version)
		return nil
	}
	if err := start(ctx, o, stdout, stderr); err != nil {
		if errors.As(err, new(unhealthy)) || errors.As(err, new(mismatch)) {
			return err
		}
		return report(o, stderr, err)
	}
	return nil
}

// start runs the instance, or the mode o asks for, until ctx is done.
func start(ctx context.Context, o options, stdout, stderr io.Writer) error {
	cfg, err := config.Load(o.configPath)
	if err != nil {
		return err
	}
	var live io.Writer // the terminal the load's progress line is drawn on
	if f, ok := stderr.(*os.File); ok && (o.mode == "initial-load" || o.mode == "verify") && isTerminal(f) {
		live, stderr = stderr, clearLine{stderr}
	}
	log := newLogger(o, stderr).With("instance", cfg.Database.Name)
	if o.mode == "initial-load" {
		if _, ok := cfg.Targets[o.loadTarget]; !ok {
			return fmt.Errorf("-load-target %q: %s has no such target (targets: %s)", o.loadTarget, o.configPath, strings.Join(targetNames(cfg), ", "))
		}
	}

	db, err := database.Open(ctx, cfg.Database, "teleport "+cfg.Database.Name)
	if err != nil {
		return err
	}
	defer db.Close()
	switch {
	case o.mode == "status": // reads only: no check, no migration
		return showStatus(ctx, db, cfg, o, stdout)
	case o.mode == "verify": // alongside the running instance: no migration
		return runVerify(ctx, db, cfg, verifyOptions{target: o.target, only: splitList(o.tables), json: o.json,
			live: live, parallel: o.parallel, logEvery: loadLogEvery}, stdout, log)
	case o.mode == "uninstall" && o.source == "":
		return uninstall(ctx, db, cfg, o, stdout, log)
	}
	role, err := database.CheckPrivileges(ctx, db)
	if err != nil {
		return err
	}
	for _, w := range role.Warnings {
		log.Warn("privilege missing for some uses", "problem", w)
	}
	applied, err := migrate.Migrate(ctx, db)
	if err != nil {
		return err
	}
	fix, err := migrate.KeepOutOfSearchPath(ctx, db)
	if err != nil {
		return err
	}
	logPathFix(log, fix)
	log.Info("starting", "version", version, "mode", o.mode, "config", o.configPath, "database", cfg.Database.Database,
		"role", role.Name, "superuser", role.Superuser, "migrations_applied", len(applied))
	if o.mode == "initial-load" {
		what := wire.LoadKind(o.tables != "")
		res, err := transmitter.Load(ctx, db, cfg, transmitter.LoadOptions{Target: o.loadTarget, Parallel: o.parallel,
			Overwrite: o.overwrite, Tables: splitList(o.tables), Progress: live, LogEvery: loadLogEvery, ChunkBytes: int64(o.chunkMB) << 20}, log)
		if err != nil && ctx.Err() != nil {
			return fmt.Errorf("%s of %s interrupted: run the same command again to resume it, the tables copied so far are kept", what, o.loadTarget)
		}
		if err != nil {
			return fmt.Errorf("%s of %s: %w", what, o.loadTarget, err)
		}
		log.Info(what+" done: the target applies the changes made since as they arrive", "tables_copied", res.Tables,
			"tables_done_before", res.Skipped, "rows", res.Rows, "bytes", res.Bytes, "took", res.Took.Round(time.Millisecond))
		return nil
	}

	if o.mode == "uninstall" {
		return removeSource(ctx, db, o.source, stdout, log)
	}

	info := server.Info{Name: cfg.Database.Name, Version: version, Role: "target"}
	var runners []runner
	if cfg.HasTargets() {
		info.Role = "source"
		src, err := sourceRunners(ctx, db, cfg, log)
		if err != nil {
			return err
		}
		runners = append(runners, src...)
		for _, r := range src {
			switch w := r.(type) {
			case *batcher.Worker:
				info.Quiet = w.QuietAt
			case *transmitter.Worker:
				info.Failing = w.Failing
			}
		}
	}
	iv := cfg.ProcessingIntervals
	srv := server.New(cfg.Server, db, info, log)
	if err := srv.Listen(); err != nil {
		return err
	}
	if cfg.HasTargets() {
		holder := load.NewHolder(db, targetNames(cfg), load.HoldIdle, log)
		srv.HoldLoadSnapshots(holder)
		runners = append(runners, holder)
	}
	apply := applier.New(db, iv.Applier.Duration(), cfg.BatchSize, log)
	srv.OnBatchStored(apply.Wake)
	srv.OnVerify(apply)
	runners = append(runners, apply, vacuum.New(db, iv.Vacuum.Duration(), vacuumChunk, log), srv)
	err = runAll(ctx, runners)
	log.Info("stopped")
	return err
}

// logPathFix says what KeepOutOfSearchPath changed.
func logPathFix(log *slog.Logger, fix migrate.PathFix) {
	if fix.From != "" {
		log.Warn("search_path of the role changed, so the objects it creates without a schema land where they are replicated, not in Teleport's schema; its sessions take it when they next connect",
			"role", fix.Role, "database", fix.Database, "from", fix.From, "to", fix.To)
	}
	for _, m := range fix.Moved {
		log.Warn("moved out of Teleport's schema, where it was not replicated: rows it held before reach a target by an initial load", "object", m)
	}
	for _, m := range fix.NotMoved {
		log.Error("an object in Teleport's schema is not replicated", "problem", m)
	}
}

// removeSource removes source and everything stored for it on this target,
// saying what it removed on stdout. A source not there is not an error:
// run twice, the second run finds nothing to do.
func removeSource(ctx context.Context, db *sql.DB, source string, stdout io.Writer, log *slog.Logger) error {
	rm, ok, err := store.RemoveSource(ctx, db, source)
	if err != nil {
		return err
	}
	if !ok {
		fmt.Fprintf(stdout, "no source %s on this database: nothing to remove\n", source)
		return nil
	}
	log.Warn("source removed", "source", source, "chunks_deleted", rm.Chunks, "applied_seq", rm.AppliedSeq)
	fmt.Fprintf(stdout, "removed source %s: %d stored chunks deleted; it had applied batches 1 to %d, whose rows stay. "+
		"It is taken again only from its batch 1 (or an initial load)\n", source, rm.Chunks, rm.AppliedSeq)
	return nil
}

// uninstall removes Teleport from the database, saying what it removed on
// stdout; it refuses, naming what, while replication has not finished,
// unless -force.
func uninstall(ctx context.Context, db *sql.DB, cfg config.Config, o options, stdout io.Writer, log *slog.Logger) error {
	if _, url, err := askInstance(ctx, cfg.Server); err == nil { // -force or not: it would go on with its schema gone
		return fmt.Errorf("the instance answers at %s: stop it first (and the application's writes, or they are no longer captured)", url)
	}
	installed, err := migrate.Installed(ctx, db)
	if err != nil {
		return err
	}
	if installed && cfg.HasTargets() && !o.force {
		// What the targets have applied, now rather than as they last said.
		send, err := transmitter.New(db, cfg.Database.Name, cfg.Targets, cfg.ProcessingIntervals.Transmitter.Duration(), log)
		if err != nil {
			return err
		}
		if err := send.AskTargets(ctx); err != nil {
			log.Warn("a target did not answer: what it last said counts", "err", err)
		}
	}
	r, err := migrate.Uninstall(ctx, db, o.force, o.enable)
	if errors.Is(err, migrate.ErrUnfinished) {
		return fmt.Errorf("not uninstalled: replication has not finished (wait for it, or run again with -force to lose it):\n%s", strings.Join(r.Unfinished, "\n"))
	}
	for _, t := range r.Triggers {
		fmt.Fprintf(stdout, "dropped capture trigger %s\n", t)
	}
	if r.EventTrigger {
		fmt.Fprintln(stdout, "dropped event trigger teleport_ddl")
	}
	if r.Schema {
		fmt.Fprintln(stdout, "dropped schema teleport: Teleport's state, events and functions")
	}
	for _, t := range r.EnabledTriggers {
		fmt.Fprintf(stdout, "enabled trigger %s\n", t)
	}
	if err != nil {
		return err
	}
	for _, u := range r.Unfinished {
		log.Warn("uninstalled with -force: lost", "unfinished", u)
	}
	if r.Nothing() {
		fmt.Fprintln(stdout, "nothing to remove: Teleport is not installed in this database")
	}
	if r.SearchPath != "" && !r.Nothing() {
		fmt.Fprintf(stdout, "the role's settings in this database (%s) stay: ALTER ROLE CURRENT_USER IN DATABASE %s RESET search_path undoes what Teleport set\n",
			r.SearchPath, database.QuoteIdent(cfg.Database.Database))
	}
	return nil
}

// loadLogEvery is how often an initial load or a verify logs its progress.
const loadLogEvery = 10 * time.Second

// isTerminal reports whether f is a terminal, where a live progress line
// can be redrawn in place.
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// clearLine erases the live progress line before each log line, so the two
// do not run together; the progress line is drawn again on its next tick.
type clearLine struct{ w io.Writer }

func (c clearLine) Write(p []byte) (int, error) {
	if _, err := io.WriteString(c.w, "\r\033[K"); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}

// vacuumChunk is the most rows the vacuum deletes in one transaction.
const vacuumChunk = 10000

// sourceRunners installs the capture triggers on every table a target takes
// and returns the source's workers: the batcher, the transmitter and the
// ddlwatcher, which captures the tables that appear later.
func sourceRunners(ctx context.Context, db *sql.DB, cfg config.Config, log *slog.Logger) ([]runner, error) {
	res, err := capture.InstallCapture(ctx, db, cfg.MatchAny, false)
	if err != nil {
		return nil, err
	}
	log.Info("capturing changes", "tables", len(res.Captured), "triggers_installed_on", len(res.Installed))
	if err := schema.SetEventTriggers(ctx, db, cfg.UseEventTriggers, cfg.SnapshotSchema()); err != nil {
		return nil, err
	}
	if cfg.UseEventTriggers {
		log.Info("schema changes are captured by event trigger as they commit; the ddlwatcher still installs capture on new tables")
	}
	iv := cfg.ProcessingIntervals
	send, err := transmitter.New(db, cfg.Database.Name, cfg.Targets, iv.Transmitter.Duration(), log)
	if err != nil {
		return nil, err
	}
	batch := batcher.New(db, cfg, send.Wake, log)
	if err := batch.SyncTargets(ctx); err != nil {
		return nil, err
	}
	watch := ddlwatcher.New(db, cfg.MatchAny, cfg.SnapshotSchema(), iv.DDLWatcher.Duration(), log)
	return []runner{batch, send, watch}, nil
}

// runAll runs every runner until ctx is done or one of them fails, which stops
// the others: an instance that cannot do part of its job stops whole.
func runAll(ctx context.Context, runners []runner) error {
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	errs := make([]error, len(runners))
	var wg sync.WaitGroup
	for i, r := range runners {
		wg.Go(func() {
			if errs[i] = r.Run(ctx); errs[i] != nil {
				stop()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func targetNames(cfg config.Config) []string {
	names := make([]string, 0, len(cfg.Targets))
	for n := range cfg.Targets {
		names = append(names, n)
	}
	return names
}
