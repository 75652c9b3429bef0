# The words of the built-in page, in English (the fallback for every other language).
# Dates are chrono patterns (https://docs.rs/chrono/latest/chrono/format/strftime/): day and
# month names come in the page's language.
updated = Updated
subscribe = Subscribe
subscribe-via = Subscribe:
subscriptions = Subscriptions
no-entries = No entries yet.
attachment = Attachment
also-in = Also in
list-separator = {", "}
feed-link = feed
failing-since = failing since { $date }: { $reason }
not-polled = not polled yet
readers = { $count ->
    [one] { $count } reader
   *[other] { $count } readers
}
merged-by = Merged by { $generator } { $version }.
date-long = %A, %-d %B %Y
time = %H:%M
date-time = { $date }, { $time }
failure-timeout = the feed did not answer in time
failure-connect = the feed's server could not be reached
failure-server_error = the feed's server had an error
failure-rate_limited = the feed's server asked to come back later
failure-client_error = the feed's address no longer works
failure-gone = the feed was removed by its publisher
failure-too_large = the feed is too large
failure-refused = the feed's address is not allowed here
failure-parse = the feed could not be read
failure-internal = the feed could not be polled
