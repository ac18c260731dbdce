# Sourced by the HTTP benchmarks: starts the nginx they measure sipprov against.
#
#   start_nginx WORK PORT WORKERS CONNECTIONS CACHED_FILES CONTENT_TYPE
#
# serves WORK/www on 127.0.0.1:PORT with sendfile, open_file_cache and no access log (the
# fastest static configuration nginx offers), pid and error log in WORK, pinned by
# $pin_server when the caller set it. nginx's worker runs unprivileged when started as root,
# so WORK and WORK/www are made world-readable: with mktemp -d's 0700 it answered 403 to
# every request, and the earlier HTTP figures compared sipprov with those 403s.
start_nginx() {
  local work=$1 port=$2 workers=$3 connections=$4 cached=$5 type=$6
  cat > "$work/nginx.conf" <<NGINX
worker_processes $workers;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections $connections; }
http {
  access_log off;
  sendfile on; tcp_nopush on; keepalive_requests 1000000;
  open_file_cache max=$cached inactive=60s;
  server { listen 127.0.0.1:$port; root $work/www; default_type $type; etag on; }
}
NGINX
  chmod 755 "$work" "$work/www"
  # shellcheck disable=SC2086 # $pin_server is a command prefix or empty.
  ${pin_server:-} nginx -c "$work/nginx.conf"
}
