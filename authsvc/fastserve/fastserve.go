// Package fastserve serves a net/http handler on fasthttp, a leaner HTTP/1.1
// server than net/http: no goroutine and background read per request, pooled
// buffers. jwtgate's decision listener runs on it by default (--http-server);
// bench/README.md has the figures.
//
// The handler sees the *http.Request net/http would have made of the request
// (method, target, decoded path, host, every header as sent with repeats in
// order, the body) and writes to an http.ResponseWriter; the tests and
// FuzzServersAgree hold it to that against net/http itself. Every string of
// the request is a copy: a handler may keep any of them, while fasthttp
// reuses its buffers once the handler returns. The request's context is the
// background one for the same reason.
package fastserve

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/net/http/httpguts"
)

// Limits bound what one client may hold of the server, as net/http's
// ReadHeaderTimeout, ReadTimeout, IdleTimeout and MaxHeaderBytes do, and a
// body limit.
type Limits struct {
	ReadHeader time.Duration // the request line and headers
	Read       time.Duration // a request with a body, from its headers on
	Idle       time.Duration // a kept-alive connection between requests
	MaxHeader  int           // bytes of request line and headers: 431 over it
	MaxBody    int64         // bytes of body: 413 over it
}

// Server is fasthttp's server with net/http's Shutdown.
type Server struct{ *fasthttp.Server }

// Shutdown stops accepting, closes idle connections and waits for the
// requests in flight until ctx ends.
func (s Server) Shutdown(ctx context.Context) error { return s.ShutdownWithContext(ctx) }

// New serves h under lim: the headers within ReadHeader, a body within Read,
// idle keep-alive connections closed after Idle, headers over MaxHeader
// refused with 431 and a body over MaxBody with 413. fasthttp's own
// complaints go to log at debug level.
func New(h http.Handler, lim Limits, log *slog.Logger) Server {
	return Server{&fasthttp.Server{
		Handler:     handler(h, log),
		ReadTimeout: lim.ReadHeader,
		// A request with a body gets the whole-request limit for it.
		HeaderReceived: func(hdr *fasthttp.RequestHeader) fasthttp.RequestConfig {
			if hdr.ContentLength() != 0 {
				return fasthttp.RequestConfig{ReadTimeout: lim.Read}
			}
			return fasthttp.RequestConfig{}
		},
		IdleTimeout:        lim.Idle,
		ReadBufferSize:     lim.MaxHeader,
		MaxRequestBodySize: int(lim.MaxBody),
		// What net/http does not send either.
		NoDefaultServerHeader: true,
		NoDefaultContentType:  true,
		// Bodies are read whole (at most maxBody): the sign-in handlers parse
		// their forms from r.Body themselves.
		DisablePreParseMultipartForm: true,
		// Shutdown closes idle keep-alive connections at once, as net/http's.
		CloseOnShutdown:       true,
		SecureErrorLogMessage: true,
		ErrorHandler:          refuse,
		Logger:                logger{log},
	}}
}

// refuse answers a request fasthttp could not read as net/http does: 400,
// 413 or 431 with no body, and the connection closes; on a timeout it only
// closes the connection.
func refuse(ctx *fasthttp.RequestCtx, err error) {
	status := http.StatusBadRequest
	var tooBig *fasthttp.ErrSmallBuffer
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		status = http.StatusRequestEntityTooLarge
	case errors.As(err, &tooBig):
		status = http.StatusRequestHeaderFieldsTooLarge
	}
	var timeout interface{ Timeout() bool }
	if errors.As(err, &timeout) && timeout.Timeout() {
		// net/http closes a connection that timed out without a word: a 408
		// on a connection a proxy opened ahead of time would be read as the
		// answer to the next request it sends there.
		_ = ctx.Conn().Close()
		return
	}
	ctx.Response.Reset()
	ctx.SetStatusCode(status)
	ctx.SetConnectionClose()
}

// logger writes fasthttp's own complaints (a connection it could not serve)
// at debug level: they are a client's doing, not the operator's.
type logger struct{ log *slog.Logger }

func (l logger) Printf(format string, args ...any) {
	l.log.Debug("http server", "detail", fmt.Sprintf(format, args...))
}

// handler turns each fasthttp request into the *http.Request net/http would
// have made of it and serves it with h. A handler that panics costs its
// request (500, the connection closed) and a log line, as on net/http, not
// the process: fasthttp itself does not recover.
func handler(h http.Handler, log *slog.Logger) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		defer func() {
			if v := recover(); v != nil {
				if v != http.ErrAbortHandler { //nolint:errorlint // net/http compares the same way
					log.Error("http handler panicked", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				}
				ctx.Response.Reset()
				ctx.SetStatusCode(http.StatusInternalServerError)
				ctx.SetConnectionClose()
			}
		}()
		r, status := netRequest(ctx)
		if r == nil {
			ctx.SetStatusCode(status)
			ctx.SetConnectionClose()
			return
		}
		w := writer{ctx: ctx, header: make(http.Header, 4)}
		h.ServeHTTP(&w, r)
		w.finish()
	}
}

// netRequest builds the request from what fasthttp read: the headers as they
// came (names canonical, values trimmed, repeated headers in order), Host in
// r.Host and not among them (the target's host when the target is absolute),
// Transfer-Encoding in r.TransferEncoding (the body is already de-chunked),
// the URL parsed as net/http parses a request target. It refuses, with the
// status net/http answers (nil and the status), what net/http refuses and
// fasthttp lets through: no Host on HTTP/1.1, two Host headers or a malformed
// one, and a Transfer-Encoding other than chunked (fasthttp would ignore
// "identity" and read the body as the next request).
func netRequest(ctx *fasthttp.RequestCtx) (*http.Request, int) {
	// One scan of the raw headers copies every string of the request into
	// one string; the fields and headers are pieces of it.
	hdr := &ctx.Request.Header
	uri, meth, host := ctx.RequestURI(), ctx.Method(), hdr.Host()
	var lens [2 * 32]int // name and value lengths; more headers spill into a slice
	sizes := lens[:0]
	var b strings.Builder // its buffer becomes the string: one allocation
	b.Grow(len(uri) + len(meth) + len(host) + len(hdr.RawHeaders()))
	_, _ = b.Write(uri)
	_, _ = b.Write(meth)
	_, _ = b.Write(host)
	for k, v := range hdr.AllInOrder() {
		_, _ = b.Write(k)
		_, _ = b.Write(v)
		sizes = append(sizes, len(k), len(v))
	}
	all := b.String()
	cut := func(n int) string { s := all[:n]; all = all[n:]; return s }
	r := &http.Request{
		RequestURI: cut(len(uri)),
		Method:     method(cut(len(meth))),
		Host:       cut(len(host)),
		Proto:      "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:     make(http.Header, len(sizes)/2),
		RemoteAddr: ctx.RemoteAddr().String(),
	}
	if !hdr.IsHTTP11() {
		r.Proto, r.ProtoMinor = "HTTP/1.0", 0
	}
	values := make([]string, 0, len(sizes)/2)
	hosts := 0
	for i := 0; i < len(sizes); i += 2 {
		name, value := http.CanonicalHeaderKey(cut(sizes[i])), cut(sizes[i+1])
		switch name {
		case "Host":
			hosts++
			continue
		case "Transfer-Encoding":
			r.TransferEncoding = append(r.TransferEncoding, value)
			continue
		}
		if old, ok := r.Header[name]; ok {
			r.Header[name] = append(old, value)
			continue
		}
		values = append(values, value)
		r.Header[name] = values[len(values)-1 : len(values) : len(values)]
	}
	if status := refused(r, hosts); status != 0 {
		return nil, status
	}
	u, err := url.ParseRequestURI(r.RequestURI)
	if err != nil {
		return nil, http.StatusBadRequest
	}
	r.URL = u
	if u.Host != "" {
		r.Host = u.Host // an absolute target's host wins, as in net/http
	}
	r.Body = http.NoBody
	if body := ctx.PostBody(); len(body) > 0 {
		r.Body = io.NopCloser(bytes.NewReader(bytes.Clone(body)))
		r.ContentLength = int64(len(body))
	}
	// The context is the background one: fasthttp reuses its RequestCtx
	// once the handler returns, and a handler's goroutine may outlive it.
	return r, 0
}

// refused is the status net/http answers to a request whose Host headers or
// Transfer-Encoding it does not accept, or 0.
func refused(r *http.Request, hosts int) int {
	switch {
	case hosts > 1, hosts == 0 && r.ProtoAtLeast(1, 1), !httpguts.ValidHostHeader(r.Host):
		return http.StatusBadRequest
	case len(r.TransferEncoding) > 1, len(r.TransferEncoding) == 1 && !strings.EqualFold(r.TransferEncoding[0], "chunked"):
		return http.StatusNotImplemented
	}
	return 0
}

// method returns the common methods as constants (no copy kept).
func method(m string) string {
	switch m {
	case http.MethodGet:
		return http.MethodGet
	case http.MethodPost:
		return http.MethodPost
	case http.MethodHead:
		return http.MethodHead
	}
	return m
}

// writer is the handler's http.ResponseWriter: it buffers the status,
// headers and body, and finish hands them to fasthttp.
type writer struct {
	ctx    *fasthttp.RequestCtx
	header http.Header
	status int
	wrote  bool
}

func (w *writer) Header() http.Header { return w.header }

func (w *writer) WriteHeader(status int) {
	if w.status == 0 && status >= 200 {
		w.status = status
	}
}

func (w *writer) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if !w.wrote && w.header["Content-Type"] == nil {
		// net/http sniffs the first write when no Content-Type is set.
		w.header["Content-Type"] = []string{http.DetectContentType(b)}
	}
	w.wrote = true
	return w.ctx.Write(b)
}

// finish copies the status and headers into fasthttp's response. fasthttp
// sets Content-Length from the body, Date, and Connection.
func (w *writer) finish() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	resp := &w.ctx.Response
	resp.SetStatusCode(w.status)
	for name, values := range w.header {
		switch name {
		case "Content-Length", "Transfer-Encoding", "Date":
			continue
		case "Connection":
			if len(values) > 0 && values[0] == "close" {
				resp.SetConnectionClose()
			}
			continue
		case "Content-Type":
			if len(values) > 0 {
				resp.Header.SetContentType(values[0])
			}
			continue
		}
		for _, v := range values {
			resp.Header.Add(name, v)
		}
	}
	if cl := w.header["Content-Length"]; len(cl) > 0 && w.ctx.IsHead() {
		// HEAD: the length of the body a GET would have had.
		if n, err := strconv.Atoi(cl[0]); err == nil {
			resp.Header.SetContentLength(n)
			resp.SkipBody = true
		}
	}
}
