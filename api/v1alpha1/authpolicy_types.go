package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Algorithm is a JWS signing algorithm a policy accepts. "none" is not one of them,
// and never will be.
// +kubebuilder:validation:Enum=HS256;HS384;HS512;RS256;RS384;RS512;PS256;PS384;PS512;ES256;ES384;ES512;EdDSA
type Algorithm string

// KeyEncoding says how an HMAC secret is written in its Secret.
// +kubebuilder:validation:Enum=utf8;hex;base64
type KeyEncoding string

const (
	KeyEncodingUTF8   KeyEncoding = "utf8"
	KeyEncodingHex    KeyEncoding = "hex"
	KeyEncodingBase64 KeyEncoding = "base64"
)

// PathType says how a rule's path is matched, as Ingress defines it.
// +kubebuilder:validation:Enum=Prefix;Exact
type PathType string

const (
	PathTypePrefix PathType = "Prefix"
	PathTypeExact  PathType = "Exact"
)

// SameSite is the SameSite attribute of the cookies jwtgate sets.
// +kubebuilder:validation:Enum=Lax;Strict;None
type SameSite string

// Revocation says when an ended session stops being accepted.
// +kubebuilder:validation:Enum=refresh;strict
type Revocation string

const (
	// RevocationRefresh ends a session at its next refresh (within accessTokenTTL).
	RevocationRefresh Revocation = "refresh"
	// RevocationStrict checks on every decision that the token's session is alive.
	RevocationStrict Revocation = "strict"
)

// SecretKeyRef names one key of a Secret in the policy's namespace.
type SecretKeyRef struct {
	// Name of the Secret, in the AuthPolicy's namespace.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// Key within the Secret's data.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Key string `json:"key"`
}

// SecretRef names a whole Secret in the policy's namespace.
type SecretRef struct {
	// Name of the Secret, in the AuthPolicy's namespace.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// KeySource is one source of verification keys: a Secret key or a JWKS URL.
// +kubebuilder:validation:XValidation:rule="has(self.secretRef) != has(self.jwksURL)",message="set exactly one of secretRef or jwksURL"
// +kubebuilder:validation:XValidation:rule="!has(self.encoding) || has(self.secretRef)",message="encoding applies to secretRef keys only"
type KeySource struct {
	// SecretRef names a Secret key holding a PEM public key or certificate, a JWK,
	// a JWKS, or an HMAC secret. The format is detected.
	// +optional
	SecretRef *SecretKeyRef `json:"secretRef,omitempty"`
	// Encoding of an HMAC secret: utf8 (default), hex or base64.
	// +optional
	Encoding KeyEncoding `json:"encoding,omitempty"`
	// JWKSURL is fetched in the background (https; http only to loopback).
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:Pattern=`^https?://`
	JWKSURL string `json:"jwksURL,omitempty"`
}

// TokenSource is one place a token is looked for: a header (with a prefix) or a cookie.
// +kubebuilder:validation:XValidation:rule="has(self.header) != has(self.cookie)",message="set exactly one of header or cookie"
// +kubebuilder:validation:XValidation:rule="!has(self.prefix) || has(self.header)",message="prefix applies to header sources only"
type TokenSource struct {
	// Header name, e.g. Authorization.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9!#$%&'*+.^_|~-]+$`
	Header string `json:"header,omitempty"`
	// Prefix the header value must start with, e.g. "Bearer ". Compared
	// case-insensitively, as RFC 7235 treats auth schemes.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	Prefix string `json:"prefix,omitempty"`
	// Cookie name.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9!#$%&'*+.^_|~-]+$`
	Cookie string `json:"cookie,omitempty"`
}

// JWTSpec says which tokens a policy accepts.
type JWTSpec struct {
	// Algorithms the policy accepts. Each must also fit the type of the key that
	// verifies it (an RSA key is never an HMAC secret).
	// +required
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=13
	// +listType=set
	Algorithms []Algorithm `json:"algorithms"`
	// Keys that verify tokens, any number, any mix.
	// +optional
	// +kubebuilder:validation:MaxItems=32
	Keys []KeySource `json:"keys,omitempty"`
	// Issuer, when set, must equal the token's iss exactly.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	Issuer string `json:"issuer,omitempty"`
	// Audiences: the token's aud must hold at least one of them.
	// +optional
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=2048
	// +listType=set
	Audiences []string `json:"audiences,omitempty"`
	// Leeway is the clock skew allowed on exp, nbf and iat. Default 30s, at most 5m.
	// +optional
	Leeway *metav1.Duration `json:"leeway,omitempty"`
	// TokenSources are tried in order. Default: header Authorization with prefix
	// "Bearer ", then cookie jwtgate_access.
	// +optional
	// +kubebuilder:validation:MaxItems=8
	TokenSources []TokenSource `json:"tokenSources,omitempty"`
}

// ClaimRequirement is one condition on a claim. Exactly one of equals, in,
// contains or exists is set.
// +kubebuilder:validation:XValidation:rule="[has(self.equals), has(self.__in__), has(self.contains), has(self.exists)].filter(x, x).size() == 1",message="set exactly one of equals, in, contains or exists"
type ClaimRequirement struct {
	// Name of the claim, a dotted path (realm_access.roles).
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	Name string `json:"name"`
	// Equals: the claim, as a string, equals this value.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Equals *string `json:"equals,omitempty"`
	// In: the claim, as a string, is one of these values.
	// +optional
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=1024
	In []string `json:"in,omitempty"`
	// Contains: the claim (an array, or a space-separated string) has this element.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Contains *string `json:"contains,omitempty"`
	// Exists: the claim is present (true) or absent (false).
	// +optional
	Exists *bool `json:"exists,omitempty"`
}

// Rule applies to requests whose path (and method) it matches. The most specific
// matching rule wins: an Exact rule, then the longest Prefix.
// +kubebuilder:validation:XValidation:rule="!(has(self.public) && self.public) || (!has(self.roles) && !has(self.claims))",message="a public rule cannot also require roles or claims"
type Rule struct {
	// Path the rule applies to; starts with "/".
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:Pattern=`^/`
	Path string `json:"path"`
	// PathType: Prefix (default; by path segment) or Exact.
	// +optional
	PathType PathType `json:"pathType,omitempty"`
	// Methods the rule applies to; empty means all.
	// +optional
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:Pattern=`^[A-Z]+$`
	// +kubebuilder:validation:items:MaxLength=16
	// +listType=set
	Methods []string `json:"methods,omitempty"`
	// Public: no token is needed.
	// +optional
	Public bool `json:"public,omitempty"`
	// Roles: the token must carry any of these roles.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=256
	// +listType=set
	Roles []string `json:"roles,omitempty"`
	// Claims: all of these must hold.
	// +optional
	// +kubebuilder:validation:MaxItems=32
	Claims []ClaimRequirement `json:"claims,omitempty"`
}

// APIKeys lets machine clients authenticate with a key instead of a JWT.
type APIKeys struct {
	// Header the key is sent in. Default X-API-Key.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9!#$%&'*+.^_|~-]+$`
	Header string `json:"header,omitempty"`
	// SecretRef names the Secret key holding lines name:sha256:HEX[:role,role].
	// +required
	SecretRef SecretKeyRef `json:"secretRef"`
}

// ForwardClaim copies a verified claim into a response header on an allowed decision.
type ForwardClaim struct {
	// Claim, a dotted path.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	Claim string `json:"claim"`
	// Header to set, e.g. X-Auth-User.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9!#$%&'*+.^_|~-]+$`
	Header string `json:"header"`
	// Format: text (default: strings as they are, arrays comma-joined without
	// the elements that hold a comma, other values as JSON) or json (the claim
	// as compact JSON, for upstreams that want exact values).
	// +optional
	Format ForwardFormat `json:"format,omitempty"`
}

// ForwardFormat is how a forwarded claim is written into its header.
// +kubebuilder:validation:Enum=text;json
type ForwardFormat string

// The forwarded claim formats.
const (
	ForwardFormatText ForwardFormat = "text"
	ForwardFormatJSON ForwardFormat = "json"
)

// CookieSpec sets the attributes of the cookies jwtgate sets.
type CookieSpec struct {
	// Domain of the cookies; empty means the host that set them.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Domain string `json:"domain,omitempty"`
	// Secure; default true.
	// +optional
	Secure *bool `json:"secure,omitempty"`
	// SameSite: Lax (default), Strict or None.
	// +optional
	SameSite SameSite `json:"sameSite,omitempty"`
}

// OIDCSpec makes the policy an OpenID Connect relying party: people sign in at
// the organisation's identity provider (authorization code flow with PKCE), and
// the policy then issues its own tokens as after a password sign-in.
// +kubebuilder:validation:XValidation:rule="!has(self.scopes) || self.scopes.all(s, !s.contains(' '))",message="a scope is one word: list each scope as its own item"
type OIDCSpec struct {
	// IssuerURL of the provider; its discovery document is read from
	// <issuerURL>/.well-known/openid-configuration. https (http only to
	// loopback, for tests).
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:Pattern=`^https?://`
	IssuerURL string `json:"issuerURL"`
	// ClientID registered at the provider; ID tokens must carry it in aud.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	ClientID string `json:"clientID"`
	// ClientSecretRef names the Secret key holding the client secret. Omit it
	// for a public client (PKCE only).
	// +optional
	ClientSecretRef *SecretKeyRef `json:"clientSecretRef,omitempty"`
	// Scopes asked for; default [openid, email, profile]. "openid" is always sent.
	// +optional
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=256
	// +listType=set
	Scopes []string `json:"scopes,omitempty"`
	// UsernameClaim is the ID token claim that becomes sub of the issued
	// tokens; default sub. With email, email_verified must be true.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	UsernameClaim string `json:"usernameClaim,omitempty"`
	// RolesClaim is the ID token claim (dotted path) whose values become the
	// user's roles, carried in the policy's spec.rolesClaim; optional.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	RolesClaim string `json:"rolesClaim,omitempty"`
	// AllowedValues: all must hold of the ID token's claims, as rules' claims do;
	// a user for whom one fails is refused.
	// +optional
	// +kubebuilder:validation:MaxItems=32
	AllowedValues []ClaimRequirement `json:"allowedValues,omitempty"`
	// DisplayName names the provider's button on the sign-in page; default
	// "Sign in with your identity provider".
	// +optional
	// +kubebuilder:validation:MaxLength=64
	DisplayName string `json:"displayName,omitempty"`
	// MaxSessionAge: a session that began at the provider must sign in there
	// again after this (default 24h), so a user removed at the provider loses
	// access within it.
	// +optional
	MaxSessionAge *metav1.Duration `json:"maxSessionAge,omitempty"`
	// RedirectURL is the callback registered at the provider,
	// https://<host>/jwtgate/oidc/callback. Default: the callback on the host
	// where the flow started. Required when every host is a wildcard.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:Pattern=`^https?://`
	RedirectURL string `json:"redirectURL,omitempty"`
}

// LoginSpec makes the policy sign people in and issue its own tokens: with the
// users Secret, an OpenID Connect provider, or both.
// +kubebuilder:validation:XValidation:rule="has(self.usersSecretRef) || has(self.oidc)",message="set usersSecretRef, oidc, or both: people need a way to sign in"
type LoginSpec struct {
	// UsersSecretRef names the Secret key holding lines name:BCRYPT_HASH[:role,role].
	// Optional when oidc is set.
	// +optional
	UsersSecretRef *SecretKeyRef `json:"usersSecretRef,omitempty"`
	// OIDC signs people in at an OpenID Connect provider.
	// +optional
	OIDC *OIDCSpec `json:"oidc,omitempty"`
	// SigningKeySecretRef names the Secret holding private.pem or jwks.json.
	// +required
	SigningKeySecretRef SecretRef `json:"signingKeySecretRef"`
	// Issuer of issued tokens; default https://<first host>.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	Issuer string `json:"issuer,omitempty"`
	// AccessTokenTTL; default 5m.
	// +optional
	AccessTokenTTL *metav1.Duration `json:"accessTokenTTL,omitempty"`
	// RefreshTokenTTL; default 336h (14 days).
	// +optional
	RefreshTokenTTL *metav1.Duration `json:"refreshTokenTTL,omitempty"`
	// SessionMaxLifetime ends a session this long after its sign-in, however
	// often it was renewed: the next renewal sends the person to sign in
	// again. Default 720h (30 days).
	// +optional
	SessionMaxLifetime *metav1.Duration `json:"sessionMaxLifetime,omitempty"`
	// Cookie attributes.
	// +optional
	Cookie *CookieSpec `json:"cookie,omitempty"`
	// AllowedRedirectHosts for rd after sign-in (exact, or *. suffix); default hosts.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=253
	// +listType=set
	AllowedRedirectHosts []string `json:"allowedRedirectHosts,omitempty"`
	// Revocation: refresh (default) or strict.
	// +optional
	Revocation Revocation `json:"revocation,omitempty"`
}

// AuthPolicySpec is what a policy allows.
// +kubebuilder:validation:XValidation:rule="has(self.jwt) || has(self.login)",message="set jwt, login, or both"
// +kubebuilder:validation:XValidation:rule="!has(self.login) || (has(self.hosts) && size(self.hosts) > 0)",message="login requires hosts: the sign-in pages are routed by host"
type AuthPolicySpec struct {
	// Hosts routed to this policy by /jwtgate/auth and the sign-in pages: exact, or
	// "*." one label deep. Required with login.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:items:Pattern=`^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +listType=set
	Hosts []string `json:"hosts,omitempty"`
	// JWT says which tokens are accepted. May be left out when login is set: then
	// only the policy's own tokens are.
	// +optional
	JWT *JWTSpec `json:"jwt,omitempty"`
	// RolesClaim is the dotted path of the roles claim; default "roles".
	// +optional
	// +kubebuilder:validation:MaxLength=256
	RolesClaim string `json:"rolesClaim,omitempty"`
	// Rules; the most specific matching rule wins. A request matching none needs a
	// valid token and nothing more.
	// +optional
	// +kubebuilder:validation:MaxItems=512
	Rules []Rule `json:"rules,omitempty"`
	// APIKeys for machine clients.
	// +optional
	APIKeys *APIKeys `json:"apiKeys,omitempty"`
	// ForwardClaims become response headers on an allowed decision.
	// +optional
	// +kubebuilder:validation:MaxItems=32
	ForwardClaims []ForwardClaim `json:"forwardClaims,omitempty"`
	// Login makes this policy sign people in and issue tokens.
	// +optional
	Login *LoginSpec `json:"login,omitempty"`
}

// AuthPolicyStatus says whether the policy is serving and, if not, why.
type AuthPolicyStatus struct {
	// ObservedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Ready, with reasons that say what is wrong and where.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// ProxyFindings are what the controller found wrong in the proxy objects
	// (Ingresses, HTTPRoutes, SecurityPolicies, Traefik Middlewares, Istio
	// AuthorizationPolicies) that point at this policy, worst first, at most
	// 20; the ProxyConfigured condition counts them all and sums them up.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=20
	ProxyFindings []ProxyFinding `json:"proxyFindings,omitempty"`
}

// ProxyFinding is one thing wrong with how a proxy is configured around this policy.
type ProxyFinding struct {
	// Severity is error, warning or info.
	// +required
	// +kubebuilder:validation:Enum=error;warning;info
	Severity string `json:"severity"`
	// Object names the proxy object, e.g. "Ingress shop/web".
	// +required
	// +kubebuilder:validation:MaxLength=320
	Object string `json:"object"`
	// Field is the path of the field at fault.
	// +optional
	// +kubebuilder:validation:MaxLength=320
	Field string `json:"field,omitempty"`
	// Message says what is wrong and how to fix it.
	// +required
	// +kubebuilder:validation:MaxLength=1024
	Message string `json:"message"`
}

// AuthPolicy says who may pass: which tokens are accepted and which rules apply.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=ap;authpol,categories=jwtgate
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type AuthPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec AuthPolicySpec `json:"spec"`
	// +optional
	Status AuthPolicyStatus `json:"status,omitempty"`
}

// AuthPolicyList is a list of AuthPolicy.
// +kubebuilder:object:root=true
type AuthPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []AuthPolicy `json:"items"`
}
