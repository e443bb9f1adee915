package main

import (
	"fmt"
	"time"
)

// plural is n followed by one or many, as n asks: "1 day", "2 days",
// "0 days".
func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}

// verb is the form of a verb that agrees with a count: was or were.
func verb(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// expiresIn says when a certificate valid until notAfter expires, seen
// at now: in whole days, hours under a day, minutes under an hour (each
// rounded down, so that it never promises more than is left).
func expiresIn(notAfter, now time.Time) string {
	d := notAfter.Sub(now)
	switch {
	case d < 0:
		return "EXPIRED"
	case d >= 24*time.Hour:
		return "expires in " + plural(int(d/(24*time.Hour)), "day", "days")
	case d >= time.Hour:
		return "expires in " + plural(int(d/time.Hour), "hour", "hours")
	case d >= time.Minute:
		return "expires in " + plural(int(d/time.Minute), "minute", "minutes")
	}
	return "expires in less than a minute"
}
