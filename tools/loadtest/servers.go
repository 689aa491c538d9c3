package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/tlsutil"
)

// upstreamBody is the upstream's whole answer: small, fixed JSON, so the
// upstream costs as little as possible and the proxies' differences show.
const upstreamBody = `{"id":"42","title":"benchmark","items":[1,2,3],"ok":true}` + "\n"

// listenLoopback listens on addr, which must be a 127.0.0.0/8 or ::1
// address: these servers exist only to be loaded by this tool.
func listenLoopback(addr string) (net.Listener, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || !ap.Addr().Unmap().IsLoopback() {
		return nil, fmt.Errorf("listen %q: want a loopback ip:port such as 127.0.0.1:0", addr)
	}
	return net.Listen("tcp", addr)
}

// serveUntil serves srv on ln until ctx ends, then shuts it down.
func serveUntil(ctx context.Context, srv *http.Server, ln net.Listener, tls bool) error {
	errc := make(chan error, 1)
	go func() {
		if tls {
			errc <- srv.ServeTLS(ln, "", "")
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		err := srv.Shutdown(sctx)
		<-errc
		return err
	}
}

func cmdUpstream(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("upstream", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:0", "loopback address to listen on (plain HTTP)")
	netHTTP := fs.Bool("net-http", false, "serve with net/http instead of the minimal HTTP/1.1 responder")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ln, err := listenLoopback(*listen)
	if err != nil {
		return fmt.Errorf("upstream: %w", err)
	}
	if !*netHTTP {
		fmt.Fprintf(stdout, "listening %s\n", ln.Addr())
		return serveRaw(ctx, ln, []byte(upstreamBody))
	}
	body := []byte(upstreamBody)
	clen := strconv.Itoa(len(body))
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
		hd := w.Header()
		hd["Content-Type"] = []string{"application/json"}
		hd["Content-Length"] = []string{clen}
		_, _ = w.Write(body)
	})
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 120 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	fmt.Fprintf(stdout, "listening %s\n", ln.Addr())
	if err := serveUntil(ctx, srv, ln, false); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("upstream: %w", err)
	}
	return nil
}

// serveRaw is the upstream as a minimal HTTP/1.1 responder: it reads each
// request's head and body and answers every one with the same bytes.
//
// Why not net/http: its server builds a Header map and a string per header
// line of every request, so the upstream's CPU grows with the number of
// headers the proxy sends, and the upstream shares the machine's cores with
// the proxy being measured. Gatehouse's upstream contract adds about ten
// headers (identity, forwarding, request id) that (a) does not send, and
// net/http's parsing of them was charged to Gatehouse's throughput. In a real
// deployment the upstream runs on its own CPU; here it should cost the same
// whatever the proxy in front of it.
func serveRaw(ctx context.Context, ln net.Listener, body []byte) error {
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + string(body))
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	var wg sync.WaitGroup
	go func() {
		<-ctx.Done()
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			wg.Wait()
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("upstream: %w", err)
		}
		mu.Lock()
		conns[c] = true
		mu.Unlock()
		wg.Go(func() {
			defer func() {
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
				c.Close()
			}()
			br := bufio.NewReaderSize(c, 16<<10)
			for {
				_ = c.SetReadDeadline(time.Now().Add(120 * time.Second))
				closeAfter, err := readRequest(br)
				if err != nil {
					return
				}
				if _, err := c.Write(resp); err != nil || closeAfter {
					return
				}
			}
		})
	}
}

// readRequest reads one HTTP/1.1 request head and discards its body (by
// Content-Length or chunked). It reports whether the client asked to close.
func readRequest(br *bufio.Reader) (closeAfter bool, err error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return false, err
	}
	if !bytes.Contains(line, []byte(" HTTP/1.")) {
		return false, fmt.Errorf("malformed request line %q", line)
	}
	closeAfter = bytes.Contains(line, []byte(" HTTP/1.0"))
	length, chunked := int64(0), false
	for {
		line, err = br.ReadSlice('\n')
		if err != nil {
			return false, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return false, fmt.Errorf("malformed header line %q", line)
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.ParseInt(string(value), 10, 64); err != nil || length < 0 {
				return false, fmt.Errorf("bad Content-Length %q", value)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(value, []byte("chunked"))
		case bytes.EqualFold(name, []byte("Connection")):
			closeAfter = bytes.EqualFold(value, []byte("close"))
		}
	}
	switch {
	case chunked:
		if _, err := io.Copy(io.Discard, httputil.NewChunkedReader(br)); err != nil {
			return false, err
		}
		for { // trailer section
			line, err := br.ReadSlice('\n')
			if err != nil {
				return false, err
			}
			if len(bytes.TrimRight(line, "\r\n")) == 0 {
				break
			}
		}
	case length > 0:
		if _, err := br.Discard(int(length)); err != nil {
			return false, err
		}
	}
	return closeAfter, nil
}

// bufferPool is httputil.BufferPool over a sync.Pool of 32 KiB buffers.
type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte {
	if v, ok := b.p.Get().(*[]byte); ok {
		return *v
	}
	return make([]byte, 32<<10)
}

func (b *bufferPool) Put(buf []byte) { b.p.Put(&buf) }

// cmdBare is configuration (a): the standard library's reverse proxy with
// the same TLS settings and the same pooled upstream transport as the gateway,
// and nothing else.
func cmdBare(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:0", "loopback address to listen on (HTTPS)")
	upstream := fs.String("upstream", "", "upstream base URL, e.g. http://127.0.0.1:9000")
	certFile := fs.String("cert", "", "server certificate (PEM)")
	keyFile := fs.String("key", "", "server key (PEM)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	u, err := url.Parse(*upstream)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return fmt.Errorf("bare: --upstream %q must be an http:// URL", *upstream)
	}
	certs, err := tlsutil.NewFileCerts(*certFile, *keyFile, tlsutil.FileCertOptions{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return fmt.Errorf("bare: %w", err)
	}
	tlsCfg, err := tlsutil.ServerConfig(certs, "1.2")
	if err != nil {
		return fmt.Errorf("bare: %w", err)
	}
	ln, err := listenLoopback(*listen)
	if err != nil {
		return fmt.Errorf("bare: %w", err)
	}
	// The same pool settings as the gateway's upstream transport.
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   512,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		ExpectContinueTimeout: time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
	}
	defer tr.CloseIdleConnections()
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.SetXForwarded()
		},
		Transport: tr,
		// Pooled copy buffers, as the gateway has: without them every request
		// allocates a 32 KiB buffer and the baseline would be handicapped.
		BufferPool: &bufferPool{},
		ErrorLog:   log.New(io.Discard, "", 0),
	}
	srv := &http.Server{
		Handler: rp, TLSConfig: tlsCfg,
		ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 60 * time.Second, IdleTimeout: 120 * time.Second,
		MaxHeaderBytes: 32 << 10, ErrorLog: log.New(io.Discard, "", 0),
	}
	fmt.Fprintf(stdout, "listening %s\n", ln.Addr())
	if err := serveUntil(ctx, srv, ln, true); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("bare: %w", err)
	}
	return nil
}
