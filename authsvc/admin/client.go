package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/jwtgate/jwtgate/authsvc/session"
)

// Client calls the admin API (jwtgate revoke).
type Client struct {
	URL   string // http://127.0.0.1:9000
	Token []byte
	HTTP  *http.Client // nil: a client with a 30 s timeout
}

func (c *Client) do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	if len(c.Token) == 0 {
		return errNoToken
	}
	base, err := url.Parse(strings.TrimRight(c.URL, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return fmt.Errorf("admin URL %q: want http://HOST:PORT or https://HOST:PORT", c.URL)
	}
	u := base.JoinPath(path)
	u.RawQuery = query.Encode()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+string(c.Token))
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return errorFromBody(resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("admin API answered something else than its JSON: %w", err)
	}
	return nil
}

// Revoke calls POST /admin/revoke.
func (c *Client) Revoke(ctx context.Context, r RevokeRequest) (RevokeResult, error) {
	var res RevokeResult
	err := c.do(ctx, http.MethodPost, RevokePath, nil, r, &res)
	return res, err
}

// Tokens calls GET /admin/tokens.
func (c *Client) Tokens(ctx context.Context, policy, user string) (session.UserRecord, error) {
	var rec session.UserRecord
	err := c.do(ctx, http.MethodGet, TokensPath, url.Values{"policy": {policy}, "sub": {user}}, nil, &rec)
	return rec, err
}
