// The tiny API service on Go's standard library: /, /alwaysok, /healthcheck, /panic.
// Listens on LISTEN (default 0.0.0.0:8080); SIGTERM shuts down gracefully and exits 0.
package main

import (
	"context"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"
)

const index = "Index of tinyapi. These aren't the droids you're looking for\n"
const alwaysOK = `{ "status": "OK" }`

var started = time.Now()
var requests, connections atomic.Int64

func get(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
			return
		}
		h(w, r)
	}
}

func main() {
	addr := os.Getenv("LISTEN")
	if addr == "" {
		addr = "0.0.0.0:8080"
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", get(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprint(w, index)
	}))
	mux.HandleFunc("/alwaysok", get(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, alwaysOK)
	}))
	mux.HandleFunc("/healthcheck", get(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"status":"ok","version":"0.1.0","uptime_seconds":%d,"requests":%d,"connections":%d}`,
			int64(time.Since(started).Seconds()), requests.Load(), connections.Load())
	}))
	mux.HandleFunc("/panic", get(func(w http.ResponseWriter, r *http.Request) {
		log.Printf("FATAL /panic requested by %s: exiting with status 1", r.RemoteAddr)
		os.Exit(1)
	}))
	srv := &http.Server{Addr: addr, Handler: mux, ConnState: func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			connections.Add(1)
		case http.StateClosed, http.StateHijacked:
			connections.Add(-1)
		}
	}}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
	}()
	fmt.Printf("tinyapi-go listening on %s\n", addr)
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		log.Fatal(err)
	}
}
