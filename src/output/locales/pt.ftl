updated = Atualizado
subscribe = Assinar
subscribe-via = Assinar:
subscriptions = Assinaturas
no-entries = Ainda não há artigos.
attachment = Anexo
also-in = Também em
list-separator = {", "}
feed-link = feed
failing-since = com falha desde { $date }: { $reason }
not-polled = ainda não consultado
readers = { $count ->
    [one] { $count } leitor
   *[other] { $count } leitores
}
merged-by = Reunido por { $generator } { $version }.
date-long = %A, %-d de %B de %Y
time = %H:%M
date-time = { $date }, { $time }
failure-timeout = o feed não respondeu a tempo
failure-connect = não foi possível contactar o servidor do feed
failure-server_error = o servidor do feed teve um erro
failure-rate_limited = o servidor do feed pediu para voltar mais tarde
failure-client_error = o endereço do feed já não funciona
failure-gone = o feed foi removido pelo editor
failure-too_large = o feed é grande demais
failure-refused = o endereço do feed não é permitido aqui
failure-parse = não foi possível ler o feed
failure-internal = não foi possível consultar o feed
