#!/bin/bash
# bench/postfix.sh — the Postfix side of `make bench`: install, configure, start, stop, inspect.
#
#   bench/postfix.sh install   install the Debian package if missing (debconf "No configuration":
#                              the package never writes a main.cf, so it never starts on port 25)
#   bench/postfix.sh setup     (re)write /etc/postfix/main.cf for the benchmark and add one
#                              listener on 127.0.0.1:$POSTFIX_PORT; port 25 is commented out
#   bench/postfix.sh start|stop|pids|queue|clean|maildir|count
#
# What the benchmark instance is: SMTP on 127.0.0.1:$POSTFIX_PORT only, virtual(8) delivery of
# u@bench.test into one Maildir ($BENCH_MAILBASE/postfix/u/Maildir), no relay transport (every
# other destination is the error transport), no reverse lookup of clients (smtpd_peername_lookup
# = no) and no DNS in the smtp client, so nothing leaves the machine and no nameserver is asked.
set -euo pipefail
PORT=${POSTFIX_PORT:-25250}
BASE=${BENCH_MAILBASE:-/var/lib/gannet-bench}
MAILDIR=$BASE/postfix/u/Maildir
MAILUSER=gannetbench
PIDFILE=/var/spool/postfix/pid/master.pid
MARK="# written by gannet bench/postfix.sh"
MAXPROC=${POSTFIX_MAXPROC:-1300} # smtpd processes on the bench port: above the idle test's count

master_pid() { if [ -s "$PIDFILE" ]; then tr -dc 0-9 <"$PIDFILE"; fi; }
alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

count_maildir() {
    local n=0 d
    for d in new cur; do
        [ -d "$MAILDIR/$d" ] && n=$((n + $(find "$MAILDIR/$d" -mindepth 1 -maxdepth 1 -type f | wc -l)))
    done
    echo "$n"
}

case "${1:-}" in
install)
    if ! dpkg-query -W -f='${Status}' postfix 2>/dev/null | grep -q 'ok installed' ||
        [ ! -x /usr/sbin/smtp-source ]; then
        echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postfix >/dev/null
    fi
    ;;
setup)
    if ! id "$MAILUSER" >/dev/null 2>&1; then
        useradd --system --no-create-home --home-dir "$BASE" --shell /usr/sbin/nologin "$MAILUSER"
    fi
    mkdir -p "$BASE/postfix"
    chown -R "$MAILUSER:$MAILUSER" "$BASE/postfix"
    # keep a main.cf someone else wrote (never overwrite it without a copy)
    if [ -f /etc/postfix/main.cf ] && ! grep -qF "$MARK" /etc/postfix/main.cf &&
        [ ! -f /etc/postfix/main.cf.before-gannet-bench ]; then
        cp -p /etc/postfix/main.cf /etc/postfix/main.cf.before-gannet-bench
    fi
    cat >/etc/postfix/main.cf <<EOF
$MARK (benchmark instance: loopback only, no relay)
compatibility_level = 3.6
queue_directory = /var/spool/postfix
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
data_directory = /var/lib/postfix
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.bench.test
mydomain = bench.test
myorigin = \$myhostname
mydestination = localhost
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relayhost =
default_transport = error:gannet bench: no relay
relay_transport = error:gannet bench: no relay
disable_dns_lookups = yes
smtpd_peername_lookup = no
alias_maps =
alias_database =
biff = no
smtpd_banner = \$myhostname ESMTP
virtual_mailbox_domains = bench.test
virtual_mailbox_base = $BASE
virtual_mailbox_maps = hash:/etc/postfix/gannet_bench_vmailbox
virtual_minimum_uid = 1
virtual_uid_maps = static:$(id -u "$MAILUSER")
virtual_gid_maps = static:$(id -g "$MAILUSER")
virtual_mailbox_limit = 0
maillog_file = /var/log/postfix-gannet-bench.log
EOF
    echo "u@bench.test postfix/u/Maildir/" >/etc/postfix/gannet_bench_vmailbox
    postmap /etc/postfix/gannet_bench_vmailbox
    # our listener; any other inet listener (port 25 included) is commented out
    postconf -M "127.0.0.1:$PORT/inet=127.0.0.1:$PORT inet n - n - $MAXPROC smtpd"
    postconf -M | awk '$2 == "inet" {print $1}' | while read -r svc; do
        [ "$svc" = "127.0.0.1:$PORT" ] || postconf -MX "$svc/inet"
    done
    postfix check
    ;;
start)
    if alive "$(master_pid)"; then exit 0; fi
    ulimit -n "$(ulimit -Hn)"
    /usr/lib/postfix/configure-instance.sh - >/dev/null 2>&1 || true # copy etc files into the chroot
    postfix start >/dev/null 2>&1
    for _ in $(seq 100); do alive "$(master_pid)" && break; sleep 0.1; done
    for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
    alive "$(master_pid)" || { echo "postfix did not start" >&2; exit 1; }
    ;;
stop)
    pid=$(master_pid)
    if alive "$pid"; then
        kill -TERM "$pid" # the master stops its children
        for _ in $(seq 150); do alive "$pid" || break; sleep 0.1; done
        alive "$pid" && { echo "postfix master $pid still running" >&2; exit 1; }
    fi
    exit 0
    ;;
pids)
    pid=$(master_pid)
    if alive "$pid"; then echo "$pid"; fi
    ;;
queue)
    find /var/spool/postfix/maildrop /var/spool/postfix/incoming /var/spool/postfix/active \
        /var/spool/postfix/deferred /var/spool/postfix/hold -type f 2>/dev/null | wc -l
    ;;
clean)
    for d in new cur tmp; do
        if [ -d "$MAILDIR/$d" ]; then find "$MAILDIR/$d" -mindepth 1 -maxdepth 1 -type f -delete; fi
    done
    ;;
maildir) echo "$MAILDIR" ;;
count) count_maildir ;;
*)
    echo "usage: $0 install|setup|start|stop|pids|queue|clean|maildir|count" >&2
    exit 2
    ;;
esac
