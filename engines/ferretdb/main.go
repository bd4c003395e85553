// Command ferretdb runs the embeddable FerretDB v1.24.2 (a MongoDB wire-protocol
// server) on the project's PostgreSQL cluster. It is the local/CI stand-in for
// MongoDB in Base B; scripts/engines.sh builds it into $DATA/bin/ferretdb and
// starts it (engine "mongo"). Production uses the official mongo image.
//
// Usage:
//
//	ferretdb -listen 127.0.0.1:27017 -pid-file ferretdb.pid \
//	  -postgresql-url 'postgres://credit_ferret_anon@127.0.0.1:5432/credit_ferret?sslmode=disable'
//
// Environment fallbacks: FERRETDB_LISTEN_ADDR, FERRETDB_POSTGRESQL_URL,
// FERRETDB_LOG_LEVEL (debug|info|warn|error).
//
// How authentication works with the postgresql handler (read from the v1.24.2
// sources and verified against a running server):
//
//   - Clients authenticate with authMechanism=PLAIN only (SCRAM needs the
//     "new auth" mode, which the embeddable package does not enable). saslStart
//     only records the username/password on the connection and answers
//     "done"; nothing is checked yet.
//   - Every command that touches storage asks a pool keyed by the handler URL
//     with its user:password replaced by the client's. Opening that pool makes
//     PostgreSQL check the password (SCRAM on 127.0.0.1), so a wrong password
//     fails on the first real command (find/insert/...), not at connect time.
//     Privileges are PostgreSQL's: the client's role must be allowed to
//     CONNECT to the database and CREATE schemas in it.
//   - A client that sends NO credentials gets the handler URL's own user and
//     password. So the URL must carry no password and a role that cannot log
//     in (engines.sh uses the NOLOGIN role credit_ferret_anon with no
//     privileges); this program refuses a URL that contains a password.
//     The process must also not see PGPASSWORD/PGPASSFILE/~/.pgpass (pgx reads
//     them when the URL has no password); engines.sh starts it with a clean
//     environment.
//   - Mongo database name = PostgreSQL schema inside the ONE PostgreSQL
//     database of the handler URL; a collection is a table in that schema.
//   - The refusal is an InternalError (code 1) whose message carries
//     PostgreSQL's "password authentication failed" (SQLSTATE 28P01), not
//     AuthenticationFailed (18); even `ping` fails, since it queries storage.
//     Only a non-PLAIN mechanism (the drivers' default SCRAM) is refused at
//     connect, with code 18.
//
// Verified with the Node mongodb 6 driver: credit_ml with its password can
// insert, find by _id, createIndex (unique; a duplicate gives code 11000);
// a wrong password, no credentials, an unknown user, the NOLOGIN roles and
// the Base A role credit_app (no CONNECT on the database) can neither read,
// write nor list anything.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func env(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func main() {
	listen := flag.String("listen", env("FERRETDB_LISTEN_ADDR", "127.0.0.1:27017"), "TCP listen address")
	pgURL := flag.String("postgresql-url", env("FERRETDB_POSTGRESQL_URL", ""), "PostgreSQL URL for the postgresql handler (no password)")
	logLevel := flag.String("log-level", env("FERRETDB_LOG_LEVEL", "info"), "log level: debug, info, warn, error")
	pidFile := flag.String("pid-file", "", "write the process id to this file while running")
	flag.Parse()

	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fail(fmt.Errorf("invalid -log-level %q: %w", *logLevel, err))
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(logger)

	if err := checkURL(*pgURL); err != nil {
		fail(err)
	}

	f, err := ferretdb.New(&ferretdb.Config{
		Listener:      ferretdb.ListenerConfig{TCP: *listen},
		Logger:        logger,
		Handler:       "postgresql",
		PostgreSQLURL: *pgURL,
	})
	if err != nil {
		fail(err)
	}

	if *pidFile != "" {
		if err := os.WriteFile(*pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			fail(err)
		}
		defer os.Remove(*pidFile)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	logger.Info("ferretdb: serving", slog.String("listen", *listen))
	err = f.Run(ctx)
	logger.Info("ferretdb: stopped")
	if err != nil {
		fail(err)
	}
}

// checkURL refuses a missing URL and one that carries a password (which
// would let clients without credentials act as that role).
func checkURL(s string) error {
	if s == "" {
		return errors.New("-postgresql-url (or FERRETDB_POSTGRESQL_URL) is required")
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return errors.New("-postgresql-url must be a postgres:// URL")
	}
	if _, has := u.User.Password(); has || u.Query().Has("password") {
		return errors.New("-postgresql-url must not contain a password: clients without credentials would get that role")
	}
	return nil
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "ferretdb: %v\n", err)
	os.Exit(1)
}
