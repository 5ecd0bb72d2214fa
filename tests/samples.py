"""The sample records of ivmtr.md section 5, shared by the unit tests."""

from __future__ import annotations

import json
from typing import Any

# ivmtr.md section 5
PIECE: dict[str, Any] = json.loads(
    '{"imb":"0004069951599001910222082810103","imbTrackingCode":"00040699515990019102",'
    '"imbStid":"040","imbMid":"699515","imbSerialNumber":"990019102",'
    '"imbRoutingCode":"22082810103","routingCodeImbMatchingPortion":"22082810103",'
    '"handlingEventType":"A","handlingEventTypeDescription":"Actual",'
    '"scanDatetime":"2016-01-22 22:29:53-05:00","scanEventCode":"918",'
    '"mailPhase":"Phase 3c - Destination Sequenced Carrier Sortation","machineName":"DBCS-016",'
    '"machineId":"016","scanFacilityName":"MERRIFIELD","scanFacilityCity":"Merrifield",'
    '"scanFacilityState":"VA","scanFacilityZip":"22116","scanLocaleKey":"X27222",'
    '"edocJobId":"J123456","edocSubmitterCrid":"4614860","mailClassDescription":"First Class",'
    '"mailShapeDescription":"Letter","pieceId":"2f2980d0-1086-11e6-a904-e58664760ec6",'
    '"predictedDeliveryDate":"2016-01-22","startTheClockDate":"2016-01-21"}'
)
LDE: dict[str, Any] = json.loads(
    '{"imb":"0004069951599001910222082810103","handlingEventType":"L",'
    '"handlingEventTypeDescription":"Logical","scanEventCode":"517",'
    '"scanDatetime":"2016-01-23 11:05:00-05:00","mailPhase":"Phase 4c - Delivery",'
    '"scanFacilityZip":"22082","ldeDeliveryMode":"On-Street","ldeInventoryMethod":"LPO 918",'
    '"ldeTriggerMethod":"ZIP+4 Entry"}'
)
