-- Prosody for the XMPP benchmark (bench/xmpp.sh): one virtual host, plain-TCP c2s on
-- loopback, SCRAM-SHA-1 over hashed credentials in the file store, registration open so the
-- script can create the accounts over XEP-0077. Not a deployment configuration.
--
-- The script sets, per run:
--   BENCH_PROSODY_PORT  c2s port on 127.0.0.1
--   BENCH_PROSODY_DATA  temporary data directory (accounts, pid file)
--   BENCH_DOMAIN        the virtual host (bench.local)

-- The script starts the server as the current user, which may be root in a container.
run_as_root = true
pidfile = ENV_BENCH_PROSODY_DATA .. "/prosody.pid"
data_path = ENV_BENCH_PROSODY_DATA

-- Errors only, to stderr: logging must not cost the server time during the measurement.
log = { error = "*stderr" }

-- Only what a c2s session needs; no s2s, HTTP, offline storage or rate limits.
modules_enabled = {
	"roster";
	"saslauth";
	"disco";
	"ping";
	"register";
	"posix";
}
modules_disabled = { "s2s"; "offline"; "tls" }

c2s_ports = { tonumber(ENV_BENCH_PROSODY_PORT) }
c2s_interfaces = { "127.0.0.1" }
-- The default listen backlog (128) can drop SYNs when hundreds of clients connect at once.
network_settings = { tcp_backlog = 1024 }
s2s_ports = { }
-- Plain TCP: the benchmark compares XMPP handling, not TLS.
c2s_require_encryption = false
allow_unencrypted_plain_auth = false

-- Hashed (SCRAM-SHA-1) credentials in the internal file store.
authentication = "internal_hashed"
storage = "internal"

allow_registration = true
-- Registrations come from loopback only; no throttling for the account creation burst.
registration_whitelist = { "127.0.0.1", "::1" }
min_seconds_between_registrations = 0

VirtualHost (ENV_BENCH_DOMAIN)
