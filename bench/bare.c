/*
 * The HTTP ceiling for bench/ingest.sh and the delivery sink for
 * bench/deliver.sh: a bare libmicrohttpd server with the daemon flags and
 * options of src/http.c (internal polling thread pool, epoll,
 * suspend/resume allowed, ITC, the same connection limit and timeout). It
 * reads each request's body into a growing buffer, as the host does, and
 * answers every request at once with a fixed small JSON body; nothing is
 * verified, parsed or stored.
 *
 * Usage: bare [--port N] [--status CODE] [--threads N]
 *   --port     on 127.0.0.1; 0 (default): any free port
 *   --status   the status of every answer (default 200; deliver.sh uses 202)
 *   --threads  MHD's thread pool (default: one per CPU, as the host)
 * Prints "listening PORT" on stdout once it listens; on SIGTERM or SIGINT
 * prints "requests N" (how many were answered) and exits 0.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <microhttpd.h>

struct req {
	char *data;
	size_t len, cap;
};

static unsigned status = 200;
static atomic_ulong answered;
static const char answer[] = "{\"status\":\"accepted\"}";

static enum MHD_Result on_request(void *cls, struct MHD_Connection *mc, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_size, void **con_cls)
{
	struct req *r = *con_cls;
	if (!r) {
		r = calloc(1, sizeof *r);
		if (!r)
			return MHD_NO;
		*con_cls = r;
		return MHD_YES;
	}
	if (*upload_size) {
		if (r->len + *upload_size > r->cap) {
			size_t cap = r->cap ? r->cap : 1024;
			while (cap < r->len + *upload_size)
				cap *= 2;
			char *p = realloc(r->data, cap);
			if (!p)
				return MHD_NO;
			r->data = p;
			r->cap = cap;
		}
		memcpy(r->data + r->len, upload_data, *upload_size);
		r->len += *upload_size;
		*upload_size = 0;
		return MHD_YES;
	}
	struct MHD_Response *resp = MHD_create_response_from_buffer(
		sizeof answer - 1, (void *)answer, MHD_RESPMEM_PERSISTENT);
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	enum MHD_Result ret = MHD_queue_response(mc, status, resp);
	MHD_destroy_response(resp);
	atomic_fetch_add(&answered, 1);
	return ret;
}

static void on_completed(void *cls, struct MHD_Connection *mc, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct req *r = *con_cls;
	if (r) {
		free(r->data);
		free(r);
		*con_cls = NULL;
	}
}

int main(int argc, char **argv)
{
	unsigned port = 0;
	long threads = sysconf(_SC_NPROCESSORS_ONLN);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--port") && i + 1 < argc)
			port = (unsigned)atoi(argv[++i]);
		else if (!strcmp(argv[i], "--status") && i + 1 < argc)
			status = (unsigned)atoi(argv[++i]);
		else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
			threads = atol(argv[++i]);
		else {
			fprintf(stderr, "usage: bare [--port N] [--status CODE] [--threads N]\n");
			return 2;
		}
	}
	if (threads < 1)
		threads = 1;

	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* Loopback only, as the benchmarks use it. */
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
			 MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG | MHD_USE_ITC;
	struct MHD_Daemon *d = MHD_start_daemon(
		flags, 0, NULL, NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
		MHD_OPTION_THREAD_POOL_SIZE, (unsigned)threads, MHD_OPTION_CONNECTION_TIMEOUT, 10u,
		MHD_OPTION_CONNECTION_LIMIT, 1024u, MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)16384, /* as src/http.c */ MHD_OPTION_END);
	if (!d) {
		fprintf(stderr, "bare: cannot listen on port %u\n", port);
		return 1;
	}
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	printf("listening %u\n", info ? info->port : port);
	fflush(stdout);
	int sig = 0;
	sigwait(&sigs, &sig);
	MHD_stop_daemon(d);
	printf("requests %lu\n", (unsigned long)atomic_load(&answered));
	return 0;
}
