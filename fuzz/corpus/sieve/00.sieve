if anyof (not exists ["From", "Date"],
                   header :contains "from" "fool@example.com") {
                discard;
             }