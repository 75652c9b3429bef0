updated = Actualizado
subscribe = Suscribirse
subscribe-via = Suscribirse:
subscriptions = Suscripciones
no-entries = Todavía no hay artículos.
attachment = Adjunto
also-in = También en
list-separator = {", "}
feed-link = fuente
failing-since = falla desde el { $date }: { $reason }
not-polled = aún no consultada
readers = { $count ->
    [one] { $count } lector
   *[other] { $count } lectores
}
merged-by = Reunido por { $generator } { $version }.
date-long = %A, %-d de %B de %Y
time = %H:%M
date-time = { $date }, { $time }
failure-timeout = la fuente no respondió a tiempo
failure-connect = no se pudo contactar con el servidor de la fuente
failure-server_error = el servidor de la fuente tuvo un error
failure-rate_limited = el servidor de la fuente pidió volver más tarde
failure-client_error = la dirección de la fuente ya no funciona
failure-gone = el editor retiró la fuente
failure-too_large = la fuente es demasiado grande
failure-refused = la dirección de la fuente no está permitida aquí
failure-parse = no se pudo leer la fuente
failure-internal = no se pudo consultar la fuente
