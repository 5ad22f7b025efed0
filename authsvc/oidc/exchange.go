package oidc

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"time"

	"golang.org/x/oauth2"
)

// Client is what the relying party of one policy says about itself.
type Client struct {
	ID     string
	Secret string // "" for a public client (PKCE only)
	Scopes []string
}

// config is the x/oauth2 configuration for d and redirectURI. The client
// authenticates with client_secret_basic (the OpenID default) unless the
// provider offers only client_secret_post; a public client sends its
// client_id in the body and no secret.
func (c Client) config(d *Discovery, redirectURI string) *oauth2.Config {
	style := oauth2.AuthStyleInHeader
	switch {
	case c.Secret == "":
		style = oauth2.AuthStyleInParams
	case len(d.TokenAuthMethods) > 0 && !slices.Contains(d.TokenAuthMethods, "client_secret_basic") && slices.Contains(d.TokenAuthMethods, "client_secret_post"):
		style = oauth2.AuthStyleInParams
	}
	return &oauth2.Config{
		ClientID:     c.ID,
		ClientSecret: c.Secret,
		Endpoint:     oauth2.Endpoint{AuthURL: d.AuthorizationEndpoint, TokenURL: d.TokenEndpoint, AuthStyle: style},
		RedirectURL:  redirectURI,
		Scopes:       c.Scopes,
	}
}

// AuthURL is where /jwtgate/oidc/start sends the browser: the authorization
// code flow with state, nonce and PKCE S256.
func (c Client) AuthURL(d *Discovery, f Flow) string {
	return c.config(d, f.RedirectURI).AuthCodeURL(f.State,
		oauth2.S256ChallengeOption(f.Verifier),
		oauth2.SetAuthURLParam("nonce", f.Nonce))
}

// ErrProviderRefused: the token endpoint answered with an OAuth error (the
// code was already used, has expired, or the client is not known): 400.
var ErrProviderRefused = errors.New("the identity provider refused the sign-in code")

// ErrUnreachable: the token endpoint could not be reached or answered with
// something other than an OAuth answer: 502.
var ErrUnreachable = errors.New("the identity provider could not be reached")

// Exchange trades the code for tokens at the provider (with the PKCE
// verifier) and returns the raw ID token. Errors wrap ErrProviderRefused or
// ErrUnreachable and never quote the provider's answer body.
func (p *Provider) Exchange(ctx context.Context, c Client, d *Discovery, f Flow, code string) (string, error) {
	ctx = context.WithValue(ctx, oauth2.HTTPClient, p.Client())
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	tok, err := c.config(d, f.RedirectURI).Exchange(ctx, code, oauth2.VerifierOption(f.Verifier))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			if re.ErrorCode != "" {
				return "", fmt.Errorf("%w: %s", ErrProviderRefused, printableCode(re.ErrorCode))
			}
			return "", fmt.Errorf("%w: the token endpoint answered %d", ErrUnreachable, re.Response.StatusCode)
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return "", fmt.Errorf("%w: %v", ErrUnreachable, err)
	}
	idt, _ := tok.Extra("id_token").(string)
	if idt == "" {
		return "", fmt.Errorf("%w: the token endpoint answered without an id_token (is the openid scope allowed for this client?)", ErrUnreachable)
	}
	return idt, nil
}

// printableCode keeps an OAuth error code that a provider or a browser sent
// fit for a log line and a page: ASCII letters, digits and _ only, bounded.
func printableCode(s string) string {
	out := make([]byte, 0, min(len(s), 64))
	for i := 0; i < len(s) && len(out) < 64; i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		return "unknown_error"
	}
	return string(out)
}

// PrintableCode is printableCode for the callback's error parameter.
func PrintableCode(s string) string { return printableCode(s) }

// EndSessionURL is the provider's RP-initiated logout URL with an
// id_token_hint and where to come back, or "" when the provider offers none.
func EndSessionURL(d *Discovery, clientID, idToken, postLogout string) string {
	if d == nil || d.EndSessionEndpoint == "" {
		return ""
	}
	u, err := url.Parse(d.EndSessionEndpoint)
	if err != nil {
		return ""
	}
	q := u.Query()
	q.Set("client_id", clientID)
	if idToken != "" {
		q.Set("id_token_hint", idToken)
	}
	if postLogout != "" {
		q.Set("post_logout_redirect_uri", postLogout)
	}
	u.RawQuery = q.Encode()
	return u.String()
}
