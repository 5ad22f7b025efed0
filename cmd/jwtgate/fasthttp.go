package main

import "fmt"

// The decision listener's HTTP servers (--http-server). fasthttp reads and
// writes HTTP/1.1 with far less work per request than net/http: bench/README.md
// has the figures. The handlers stay net/http handlers (authsvc/fastserve).
const (
	serverFastHTTP = "fasthttp"
	serverNetHTTP  = "net/http"

	defaultHTTPServer = serverFastHTTP
)

// decisionServer is the decision listener's server, from --http-server
// (empty: the default).
func (c *commonFlags) decisionServer() (string, error) {
	switch c.httpServer {
	case "":
		return defaultHTTPServer, nil
	case serverFastHTTP, serverNetHTTP:
		return c.httpServer, nil
	}
	return "", fmt.Errorf("--http-server %q: use %s or %s", c.httpServer, serverFastHTTP, serverNetHTTP)
}
