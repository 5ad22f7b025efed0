package redisstore

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/redis/go-redis/v9"

	"github.com/jwtgate/jwtgate/authsvc/session"
)

var (
	_ session.Records       = (*Store)(nil)
	_ session.SessionLister = (*Store)(nil)
)

// Record implements session.Records: it writes the audit line, then keeps the
// event in the user's list (the newest EventsPerUser, for at least RecordTTL
// and at least until the refresh token the event issued ends). Events without
// a user are only logged.
func (s *Store) Record(ctx context.Context, e session.Event) error {
	now := s.now()
	if e.Time.IsZero() {
		e.Time = now
	}
	session.LogEvent(ctx, s.audit, e)
	if e.User == "" {
		return nil
	}
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	keep := s.o.EventsPerUser
	if keep <= 0 {
		keep = session.DefaultEventsPerUser
	}
	ttl := s.o.RecordTTL
	if ttl <= 0 {
		ttl = session.DefaultRecordTTL
	}
	if d := e.Expires.Sub(now); d > ttl {
		ttl = d
	}
	ctx, cancel := s.opCtx(ctx)
	defer cancel()
	if err := recordScript.Run(ctx, s.rdb, []string{s.prefix(e.Policy) + "r:" + e.User}, b, keep, ttl.Milliseconds()).Err(); err != nil {
		return s.fail("record", err)
	}
	return nil
}

// UserRecord implements session.Records.
func (s *Store) UserRecord(ctx context.Context, policy, user string) (session.UserRecord, error) {
	live, err := s.UserSessions(ctx, policy, user)
	if err != nil {
		return session.UserRecord{}, err
	}
	cctx, cancel := s.opCtx(ctx)
	defer cancel()
	raw, err := s.rdb.LRange(cctx, s.prefix(policy)+"r:"+user, 0, -1).Result()
	if err != nil {
		return session.UserRecord{}, s.fail("records", err)
	}
	// The list is newest first (LPUSH); BuildUserRecord sorts by time, stably,
	// so hand it the events oldest first: events of one instant (a refusal and
	// the revocation it caused) keep the order they were recorded in.
	events := make([]session.Event, 0, len(raw))
	for i := len(raw) - 1; i >= 0; i-- {
		var e session.Event
		if json.Unmarshal([]byte(raw[i]), &e) == nil {
			events = append(events, e)
		}
	}
	return session.BuildUserRecord(policy, user, live, events, s.now(), nil), nil
}

// SessionUser implements session.Records: the user of a live session.
func (s *Store) SessionUser(ctx context.Context, policy, sessionID string) (string, error) {
	ctx, cancel := s.opCtx(ctx)
	defer cancel()
	u, err := s.rdb.HGet(ctx, s.prefix(policy)+"s:"+sessionID, "user").Result()
	switch {
	case errors.Is(err, redis.Nil):
		return "", nil
	case err != nil:
		return "", s.fail("session user", err)
	}
	return u, nil
}
